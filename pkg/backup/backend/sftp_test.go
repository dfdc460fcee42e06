package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// plantFunc writes a file into a repository behind its backend's back,
// at a slash path inside it (as a crashed writer, another tool or
// whoever holds the storage would).
type plantFunc func(rel string, data []byte)

// plantFile plants files in the repository directory root on this
// machine's disk.
func plantFile(t *testing.T, root string) plantFunc {
	return func(rel string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// exercise runs the behaviour every backend must have; plant writes
// files behind the backend's back (nil: the backend has no temporary
// files to test).
func exercise(t *testing.T, be backend.Backend, plant plantFunc) {
	t.Helper()
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatalf("create: %v", err)
	}
	h := backend.Handle{Type: backend.Pack, Name: strings.Repeat("ab", 32)}
	data := bytes.Repeat([]byte("0123456789"), 100000)
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatalf("save: %v", err)
	}
	tests := []struct {
		off    int64
		length int
	}{{0, 0}, {5, 10}, {int64(len(data)) - 3, 3}, {999_990, 0}}
	for _, tc := range tests {
		got, err := be.Load(ctx, h, tc.off, tc.length)
		want := data[tc.off:]
		if tc.length > 0 {
			want = want[:tc.length]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("load %d+%d: %v", tc.off, tc.length, err)
		}
	}
	if size, err := be.Stat(ctx, h); err != nil || size != int64(len(data)) {
		t.Fatalf("stat: %d %v", size, err)
	}
	var names []string
	if err := be.List(ctx, backend.Pack, func(n string, size int64) error {
		names = append(names, fmt.Sprintf("%s:%d", n, size))
		return nil
	}); err != nil || len(names) != 1 || names[0] != fmt.Sprintf("%s:%d", h.Name, len(data)) {
		t.Fatalf("list: %v %v", names, err)
	}
	if _, err := be.Load(ctx, backend.Handle{Type: backend.Snapshot, Name: "00"}, 0, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("load missing: %v, want ErrNotExist", err)
	}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(ctx, h); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat removed: %v", err)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.Config}, []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := be.Create(ctx); err == nil {
		t.Fatal("create over an existing repository succeeded")
	}
	if plant != nil {
		exerciseTemp(t, be, plant)
	}
}

// exerciseTemp checks that the temporary files interrupted writes leave
// are listed, hidden from List, and removable, and that RemoveTemp
// deletes nothing else.
func exerciseTemp(t *testing.T, be backend.Backend, plant plantFunc) {
	t.Helper()
	ctx := context.Background()
	temps := map[string]int{".tmp-0a": 1, "data/ab/.tmp-0b": 22, "index/.tmp-0c": 333, "snapshots/.tmp-0d": 0}
	for rel, n := range temps {
		plant(rel, make([]byte, n))
	}
	pack := backend.Handle{Type: backend.Pack, Name: strings.Repeat("cd", 32)}
	if err := be.Save(ctx, pack, []byte("pack")); err != nil {
		t.Fatal(err)
	}
	listTemp := func() map[string]int {
		got := map[string]int{}
		if err := be.ListTemp(ctx, func(f backend.TempFile) error {
			got[f.Path] = int(f.Size)
			if time.Since(f.ModTime) > time.Hour || time.Until(f.ModTime) > time.Hour {
				t.Errorf("%s: modification time %v", f.Path, f.ModTime)
			}
			if want := !strings.HasPrefix(f.Path, ".tmp-"); f.Locked() != want {
				t.Errorf("%s: Locked() = %v", f.Path, !want)
			}
			return nil
		}); err != nil {
			t.Fatalf("list temporary files: %v", err)
		}
		return got
	}
	if got := listTemp(); fmt.Sprint(got) != fmt.Sprint(temps) {
		t.Fatalf("temporary files %v, want %v", got, temps)
	}
	var packs []string
	if err := be.List(ctx, backend.Pack, func(n string, _ int64) error { packs = append(packs, n); return nil }); err != nil || len(packs) != 1 {
		t.Fatalf("list packs with a temporary file among them: %v %v", packs, err)
	}
	for _, bad := range []string{"config", "data/cd/" + pack.Name, "../.tmp-0a", "/.tmp-0a", "data/../.tmp-0a", ""} {
		if err := be.RemoveTemp(ctx, bad); err == nil {
			t.Errorf("RemoveTemp(%q) succeeded", bad)
		}
	}
	for rel := range temps {
		if err := be.RemoveTemp(ctx, rel); err != nil {
			t.Fatalf("remove %s: %v", rel, err)
		}
	}
	if got := listTemp(); len(got) != 0 {
		t.Fatalf("temporary files left after removal: %v", got)
	}
	if _, err := be.Stat(ctx, pack); err != nil {
		t.Fatalf("pack gone after removing temporary files: %v", err)
	}
	if _, err := be.Load(ctx, backend.Handle{Type: backend.Config}, 0, 0); err != nil {
		t.Fatalf("config gone after removing temporary files: %v", err)
	}
}

func TestLocal(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	exercise(t, backend.NewLocal(root), plantFile(t, root))
}

func TestSFTP(t *testing.T) {
	s := testenv.StartSSHD(t)
	kh := s.WriteKnownHosts(t)
	dir := filepath.Join(testenv.TempDir(t), "repo")
	u, _ := url.Parse(fmt.Sprintf("sftp://%s@%s%s", s.User, s.Addr, dir))
	opts := backend.SFTPOptions{KnownHosts: kh, IdentityFiles: []string{s.KeyFile}, NoAgent: true}
	be, err := backend.OpenSFTP(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("connect: %v\nsshd log:\n%s", err, s.Log())
	}
	defer be.Close()
	exercise(t, be, plantFile(t, dir))
	// The files really are on the server's disk, written atomically.
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
}

func TestSFTPRejectsUnknownHostKey(t *testing.T) {
	s := testenv.StartSSHD(t)
	other := filepath.Join(t.TempDir(), "known_hosts")
	// A known_hosts entry for this address with a different key.
	if err := os.WriteFile(other, []byte(fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVtJeb6ljBbWzeMGOPhRU1Z7OWvZs2IJcIa6VQ6HIxJ\n", s.Port)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty_known_hosts")
	_ = os.WriteFile(empty, nil, 0o600)
	for _, kh := range []string{other, empty} {
		u, _ := url.Parse(fmt.Sprintf("sftp://%s@%s/tmp/x", s.User, s.Addr))
		_, err := backend.OpenSFTP(context.Background(), u, backend.SFTPOptions{KnownHosts: kh, IdentityFiles: []string{s.KeyFile}, NoAgent: true})
		if err == nil {
			t.Fatalf("connected with known_hosts %s", kh)
		}
	}
}

// A staged file exists only under a temporary name until Commit, and the
// caller's buffer is free as soon as Stage returns.
func TestLocalStage(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repo")
	l := backend.NewLocal(root)
	defer l.Close()
	if err := l.Create(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h := backend.Handle{Type: backend.Pack, Name: fmt.Sprintf("%02x", i) + strings.Repeat("cd", 31)}
		data := bytes.Repeat([]byte{byte(i)}, 1<<20)
		st, err := l.Stage(ctx, h, data)
		if err != nil {
			t.Fatal(err)
		}
		clear(data)
		if _, err := l.Stat(ctx, h); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("staged %s visible before commit: %v", h, err)
		}
		tmps, _ := filepath.Glob(filepath.Join(root, "data", h.Name[:2], ".tmp-*"))
		if len(tmps) != 1 {
			t.Fatalf("temporary files before commit: %v", tmps)
		}
		if err := st.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := l.Load(ctx, h, 0, 0)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 1<<20)) {
			t.Fatalf("load committed %s: %v", h, err)
		}
		if tmps, _ := filepath.Glob(filepath.Join(root, "data", h.Name[:2], ".tmp-*")); len(tmps) != 0 {
			t.Fatalf("temporary files after commit: %v", tmps)
		}
		if i == 1 {
			l.Idle() // staging resumes after a pause
		}
	}
	// Staging into a directory that cannot be created fails cleanly.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := backend.NewLocal(blocker)
	if _, err := bad.Stage(ctx, backend.Handle{Type: backend.Pack, Name: strings.Repeat("ef", 32)}, []byte("x")); err == nil {
		t.Fatal("stage under a regular file succeeded")
	}
}

// A server that accepts the connection and never answers fails the
// connection within the timeout.
func TestSFTPSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered, until the listener closes
		}
	}()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("sftp://u@" + ln.Addr().String() + "/repo")
	_, err = backend.OpenSFTP(context.Background(), u, backend.SFTPOptions{KnownHosts: kh, IdentityFiles: []string{}, NoAgent: true, Timeout: 200 * time.Millisecond})
	if !errors.Is(err, backend.ErrTimeout) {
		t.Fatalf("connect to a silent server: %v, want ErrTimeout", err)
	}
}

// freezer forwards one TCP connection to target until Freeze, after which
// nothing the server sends reaches the client: a server (or network)
// that stops answering in the middle of a session.
type freezer struct {
	ln     net.Listener
	frozen chan struct{}
	done   chan struct{}
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, frozen: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { close(f.done); ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer s.Close()
		go func() { _, _ = io.Copy(s, c) }()
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			select {
			case <-f.frozen:
				<-f.done // hold the connection open, silent
				return
			default:
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return f
}

func (f *freezer) Freeze() { close(f.frozen) }

// An SFTP server that stops answering mid-session makes every operation
// under way fail with ErrTimeout within OpTimeout, and every later one at
// once, instead of hanging.
func TestSFTPServerStopsAnswering(t *testing.T) {
	s := testenv.StartSSHD(t)
	fz := startFreezer(t, s.Addr)
	// The host key is the sshd's, under the freezer's address.
	fields := strings.Fields(s.KnownHosts)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", fz.ln.Addr().(*net.TCPAddr).Port, fields[1], fields[2])), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testenv.TempDir(t), "repo")
	u, _ := url.Parse(fmt.Sprintf("sftp://%s@%s%s", s.User, fz.ln.Addr(), dir))
	ctx := context.Background()
	be, err := backend.OpenSFTP(ctx, u, backend.SFTPOptions{KnownHosts: kh, IdentityFiles: []string{s.KeyFile}, NoAgent: true, OpTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("connect: %v\nsshd log:\n%s", err, s.Log())
	}
	defer be.Close()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Pack, Name: strings.Repeat("ab", 32)}
	if err := be.Save(ctx, h, bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	fz.Freeze()
	if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrTimeout) {
		t.Fatalf("load from a frozen server: %v, want ErrTimeout", err)
	}
	if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrTimeout) {
		t.Fatalf("stat after the timeout: %v, want ErrTimeout", err)
	}
	if err := be.Save(ctx, h, []byte("y")); !errors.Is(err, backend.ErrTimeout) {
		t.Fatalf("save after the timeout: %v, want ErrTimeout", err)
	}
}

// Whoever holds the storage can replace a file with a huge one or a FIFO:
// whole-file loads refuse both at once, allocating nothing.
func TestHostileFiles(t *testing.T) {
	run := func(t *testing.T, be backend.Backend, root string) {
		ctx := context.Background()
		if err := be.Create(ctx); err != nil {
			t.Fatal(err)
		}
		key := backend.Handle{Type: backend.Key, Name: strings.Repeat("01", 32)}
		pack := backend.Handle{Type: backend.Pack, Name: strings.Repeat("02", 32)}
		fifo := backend.Handle{Type: backend.Snapshot, Name: strings.Repeat("03", 32)}
		for h, size := range map[backend.Handle]int64{key: backend.KeyLimit + 1, pack: backend.PackLimit + 1} {
			p := filepath.Join(root, string(h.Type), h.Name)
			if h.Type == backend.Pack {
				p = filepath.Join(root, "data", h.Name[:2], h.Name)
			}
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, size); err != nil { // sparse
				t.Fatal(err)
			}
			if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrTooLarge) {
				t.Fatalf("load %s of %d bytes: %v, want ErrTooLarge", h, size, err)
			}
			if _, err := backend.LoadFile(ctx, be, h, 1<<40); !errors.Is(err, backend.ErrTooLarge) {
				t.Fatalf("LoadFile %s of %d bytes: %v, want ErrTooLarge", h, size, err)
			}
			// A part of known length is still read.
			if b, err := be.Load(ctx, h, size-10, 10); err != nil || len(b) != 10 {
				t.Fatalf("load the tail of %s: %v", h, err)
			}
		}
		if err := syscall.Mkfifo(filepath.Join(root, string(fifo.Type), fifo.Name), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := backend.LoadFile(ctx, be, fifo, 1<<20); err == nil {
			t.Fatal("LoadFile of a FIFO succeeded")
		}
		if _, err := be.Load(ctx, fifo, 0, 0); err == nil {
			t.Fatal("Load of a FIFO succeeded")
		}
	}
	t.Run("local", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "repo")
		run(t, backend.NewLocal(root), root)
	})
	t.Run("sftp", func(t *testing.T) {
		s := testenv.StartSSHD(t)
		dir := filepath.Join(testenv.TempDir(t), "repo")
		u, _ := url.Parse(fmt.Sprintf("sftp://%s@%s%s", s.User, s.Addr, dir))
		be, err := backend.OpenSFTP(context.Background(), u, backend.SFTPOptions{KnownHosts: s.WriteKnownHosts(t), IdentityFiles: []string{s.KeyFile}, NoAgent: true, OpTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		run(t, be, dir)
	})
}
