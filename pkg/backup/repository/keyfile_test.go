package repository

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// genuineKey returns the name and bytes of the only key file of the
// repository in dir.
func genuineKey(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "keys"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("keys: %v %v", ents, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "keys", ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return ents[0].Name(), b
}

// plantKey writes a key file called name into the repository at dir, as
// whoever holds the storage can.
func plantKey(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "keys", name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// bombKey is a key file whose KDF parameters ask for 4 GiB and 100
// passes (what the old bounds accepted), named to sort first.
func bombKey(t *testing.T, genuine []byte, memKiB, passes uint32) []byte {
	t.Helper()
	var kf KeyFile
	if err := json.Unmarshal(genuine, &kf); err != nil {
		t.Fatal(err)
	}
	kf.KDF.MemoryKiB, kf.KDF.Time, kf.KDF.Threads = memKiB, passes, 4
	b, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// allocated returns the bytes fn allocated on the heap: a derivation of a
// planted key file shows as its argon2id memory.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

const bombName = "0000000000000000000000000000000000000000000000000000000000000000"

// A key file planted in the storage with huge KDF parameters costs
// nothing: it is refused before any derivation, the genuine key still
// opens the repository, and alone it gives an error naming it.
func TestOpenPlantedBombKey(t *testing.T) {
	ctx := context.Background()
	r, dir := newTestRepo(t)
	r.Close()
	name, genuine := genuineKey(t, dir)
	plantKey(t, dir, bombName, bombKey(t, genuine, 4<<20, 100))
	// In range, the most a key may cost (256 MiB, two passes): tried
	// after the genuine key, which costs less.
	plantKey(t, dir, "0"+bombName[1:63]+"1", bombKey(t, genuine, crypto.MaxKDFMemoryKiB, 2))

	var r2 *Repository
	var err error
	n := allocated(func() { r2, err = Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{}) })
	if err != nil {
		t.Fatalf("open with planted key files: %v", err)
	}
	if r2.KeyName() != name {
		t.Fatalf("opened with key %s, want %s", r2.KeyName(), name)
	}
	r2.Close()
	if n > 64<<20 {
		t.Fatalf("open allocated %d MiB: a planted key file was derived", n>>20)
	}

	// Only the bomb is left.
	if err := os.Remove(filepath.Join(dir, "keys", name)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "keys", "0"+bombName[1:63]+"1")); err != nil {
		t.Fatal(err)
	}
	n = allocated(func() { _, err = Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{}) })
	want := "key file " + bombName + ": KDF parameters out of range (argon2id"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open with only the bomb key: %v, want %q", err, want)
	}
	if errors.Is(err, ErrWrongPassword) || !errors.Is(err, crypto.ErrKDFOutOfRange) {
		t.Fatalf("bomb key reported as a wrong password: %v", err)
	}
	if n > 16<<20 {
		t.Fatalf("refusing the bomb allocated %d MiB", n>>20)
	}
}

// The same over SFTP, with a real sshd serving the repository.
func TestOpenPlantedBombKeySFTP(t *testing.T) {
	s := testenv.StartSSHD(t)
	kh := s.WriteKnownHosts(t)
	dir := filepath.Join(testenv.TempDir(t), "repo")
	u, _ := url.Parse(fmt.Sprintf("sftp://%s@%s%s", s.User, s.Addr, dir))
	opts := backend.SFTPOptions{KnownHosts: kh, IdentityFiles: []string{s.KeyFile}, NoAgent: true}
	ctx := context.Background()
	be, err := backend.OpenSFTP(ctx, u, opts)
	if err != nil {
		t.Fatalf("connect: %v\nsshd log:\n%s", err, s.Log())
	}
	cfg := DefaultConfig()
	cfg.PackSize = 1 << 16
	r, err := Create(ctx, be, []byte("pw"), cfg, crypto.NewKDFParams(1, 64, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, genuine := genuineKey(t, dir)
	plantKey(t, dir, bombName, bombKey(t, genuine, 4<<20, 100))
	// A huge key file (the server may claim any size) is skipped too.
	plantKey(t, dir, "1"+bombName[1:], make([]byte, 1<<20))

	be, err = backend.OpenSFTP(ctx, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	var r2 *Repository
	n := allocated(func() { r2, err = Open(ctx, be, []byte("pw"), Options{}) })
	if err != nil {
		t.Fatalf("open over sftp with a planted key file: %v", err)
	}
	r2.Close()
	if n > 64<<20 {
		t.Fatalf("open allocated %d MiB: a planted key file was derived", n>>20)
	}
}

// A key file whose structure is damaged is reported as damaged, naming
// it, never as a wrong password; only a failed authentication is "wrong
// password, or key file X was modified".
func TestOpenDamagedKeyFile(t *testing.T) {
	r, dir := newTestRepo(t)
	r.Close()
	name, genuine := genuineKey(t, dir)
	var kf map[string]any
	if err := json.Unmarshal(genuine, &kf); err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(m map[string]any)) []byte {
		m := map[string]any{}
		_ = json.Unmarshal(genuine, &m)
		fn(m)
		b, _ := json.Marshal(m)
		return b
	}
	flipped := edit(func(m map[string]any) {
		d, err := base64.StdEncoding.DecodeString(m["data"].(string))
		if err != nil {
			t.Fatal(err)
		}
		d[len(d)/2] ^= 1 // a byte of the sealed key: well-formed, fails authentication
		m["data"] = base64.StdEncoding.EncodeToString(d)
	})
	tests := []struct {
		name     string
		content  []byte
		fifo     bool
		password string
		want     string
		wrongPW  bool
	}{
		{"bad json", []byte(`{"kdf":`), false, "pw", "damaged: not a key file", false},
		{"truncated", genuine[:len(genuine)/2], false, "pw", "damaged: not a key file", false},
		{"not json at all", []byte("\x00\x01garbage"), false, "pw", "damaged: not a key file", false},
		{"bad base64", edit(func(m map[string]any) { m["data"] = "!!!not base64!!!" }), false, "pw", "damaged: not a key file", false},
		{"short data", edit(func(m map[string]any) { m["data"] = "AAAA" }), false, "pw", "damaged: sealed key of 3 bytes", false},
		{"huge data", edit(func(m map[string]any) { m["data"] = strings.Repeat("A", 8000) }), false, "pw", "damaged: sealed key of 6000 bytes", false},
		{"short salt", edit(func(m map[string]any) { m["kdf"].(map[string]any)["salt"] = "AAAA" }), false, "pw", "KDF parameters out of range (argon2id salt of 3 bytes", false},
		{"no kdf", edit(func(m map[string]any) { delete(m, "kdf") }), false, "pw", "KDF parameters out of range (argon2id time 0", false},
		{"memory over uint32", edit(func(m map[string]any) { m["kdf"].(map[string]any)["memory_kib"] = 1 << 40 }), false, "pw", "damaged: not a key file", false},
		{"threads out of range", edit(func(m map[string]any) { m["kdf"].(map[string]any)["threads"] = 200 }), false, "pw", "KDF parameters out of range (argon2id threads 200", false},
		{"larger than 64 KiB", make([]byte, 65<<10), false, "pw", "damaged: unreadable", false},
		{"fifo", nil, true, "pw", "damaged: unreadable", false},
		{"flipped byte", flipped, false, "pw", "wrong password, or key file " + name + " was modified", true},
		{"wrong password", genuine, false, "nope", "wrong password, or key file " + name + " was modified", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "keys", name)
			_ = os.Remove(p)
			if tc.fifo {
				if err := syscall.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				plantKey(t, dir, name, tc.content)
			}
			_, err := Open(context.Background(), backend.NewLocal(dir), []byte(tc.password), Options{})
			want := "key file " + name + ": " + tc.want
			if tc.wrongPW {
				want = tc.want
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("open: %v, want %q", err, want)
			}
			if errors.Is(err, ErrWrongPassword) != tc.wrongPW {
				t.Fatalf("errors.Is(ErrWrongPassword) = %v for %v", !tc.wrongPW, err)
			}
		})
	}
	// Damaged and genuine side by side: the genuine key opens it.
	_ = os.Remove(filepath.Join(dir, "keys", name))
	plantKey(t, dir, name, genuine)
	plantKey(t, dir, bombName, []byte(`{"kdf":`))
	if err := syscall.Mkfifo(filepath.Join(dir, "keys", "1"+bombName[1:]), 0o600); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), backend.NewLocal(dir), []byte("pw"), Options{})
	if err != nil {
		t.Fatalf("open beside damaged key files: %v", err)
	}
	r2.Close()
}

// At most MaxKeyFiles key files are tried, and the error says so.
func TestOpenTooManyKeyFiles(t *testing.T) {
	r, dir := newTestRepo(t)
	r.Close()
	name, genuine := genuineKey(t, dir)
	if err := os.Rename(filepath.Join(dir, "keys", name), filepath.Join(dir, "keys", "f"+name[1:])); err != nil {
		t.Fatal(err)
	}
	for i := range MaxKeyFiles {
		plantKey(t, dir, fmt.Sprintf("%064x", i), genuine[:10])
	}
	_, err := Open(context.Background(), backend.NewLocal(dir), []byte("pw"), Options{})
	want := fmt.Sprintf("1 more key files not tried (at most %d are)", MaxKeyFiles)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("open: %v, want %q", err, want)
	}
	// Within the bound the genuine key is found behind the others.
	if err := os.Remove(filepath.Join(dir, "keys", fmt.Sprintf("%064x", 0))); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(context.Background(), backend.NewLocal(dir), []byte("pw"), Options{})
	if err != nil {
		t.Fatalf("open with %d damaged key files: %v", MaxKeyFiles-1, err)
	}
	r2.Close()
}
