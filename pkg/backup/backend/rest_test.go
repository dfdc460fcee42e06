package backend_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// The REST client against `rclone serve restic` as a rest-server on a
// loopback port, over a local directory: the files land in the layout
// of a local repository.
func TestREST(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	srv := testenv.StartRcloneREST(t, dir)
	be, err := backend.Open(context.Background(), "rest:"+srv.URL, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	exercise(t, be, nil)
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Fatalf("config not in the served directory: %v\n%s", err, srv.Log())
	}
	if _, err := backend.Open(context.Background(), "rest:http://user:pw@"+srv.Addr+"/", backend.Options{}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("rest url with a password: %v", err)
	}
}

// The rclone backend runs `rclone serve restic --stdio` and speaks
// HTTP/2 over its standard input and output: to a local directory, and
// to the S3 server through rclone's S3 remote.
func TestRclone(t *testing.T) {
	testenv.Rclone(t)
	t.Run("local", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "repo")
		be, err := backend.Open(context.Background(), "rclone::local:"+dir, backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		exercise(t, be, nil)
		if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("s3", func(t *testing.T) {
		s := testenv.StartSeaweedFS(t)
		testenv.RcloneS3Remote(t, "WS3", s)
		be, err := backend.Open(context.Background(), "rclone:WS3:rclonebucket/prefix", backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		exercise(t, be, nil)
	})
}

// A remote rclone does not know fails at open with rclone's own words.
func TestRcloneBadRemote(t *testing.T) {
	testenv.Rclone(t)
	_, err := backend.Open(context.Background(), "rclone:nosuchremote:path", backend.Options{})
	if err == nil || !strings.Contains(err.Error(), "rclone said") {
		t.Fatalf("open an unknown remote: %v", err)
	}
	t.Logf("unknown remote: %v", err)
}

// LimitUpload and LimitDownload cap the transfer rate.
func TestRateLimits(t *testing.T) {
	srv := testenv.StartRcloneREST(t, filepath.Join(t.TempDir(), "repo"))
	ctx := context.Background()
	be, err := backend.Open(ctx, "rest:"+srv.URL, backend.Options{HTTP: backend.HTTPOptions{LimitUpload: 1 << 20, LimitDownload: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Pack, Name: strings.Repeat("7b", 32)}
	data := make([]byte, 3<<20)
	start := time.Now()
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	// 1 MiB of burst, then 2 MiB at 1 MiB/s.
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("3 MiB uploaded in %s at 1 MiB/s", d)
	}
	start = time.Now()
	if _, err := be.Load(ctx, h, 0, len(data)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("3 MiB downloaded in %s at 1 MiB/s", d)
	}
}

// rclone dying between requests (killed, crashed) costs the request
// under way at most: the next one starts rclone again.
func TestRcloneRestarts(t *testing.T) {
	rclone := testenv.Rclone(t)
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	wrapper := filepath.Join(dir, "rclone-wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\necho $$ >>"+pids+"\nexec "+rclone+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	be, err := backend.Open(ctx, "rclone::local:"+filepath.Join(dir, "repo"), backend.Options{Rclone: backend.RcloneOptions{Program: wrapper}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Index, Name: strings.Repeat("1d", 32)}
	if err := be.Save(ctx, h, []byte("before")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pids)
	first := strings.Fields(string(b))
	if len(first) != 1 {
		t.Fatalf("rclone started %d times", len(first))
	}
	pid, _ := strconv.Atoi(first[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, err := be.Load(ctx, h, 0, 0); err != nil || string(got) != "before" {
		t.Fatalf("load after rclone was killed: %q %v", got, err)
	}
	b, _ = os.ReadFile(pids)
	if n := len(strings.Fields(string(b))); n != 2 {
		t.Fatalf("rclone started %d times, want 2", n)
	}
}
