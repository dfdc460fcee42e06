package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/testenv"
)

// resolveNow resolves ref and fails the test if Resolve has not returned
// after a minute: a FIFO without a writer used to block it for ever. The
// minute is a guard against hanging the test binary, not a measurement.
func resolveNow(t *testing.T, r *Resolver, ref Ref) ([]byte, error) {
	t.Helper()
	type result struct {
		v   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := r.Resolve(context.Background(), ref)
		done <- result{v, err}
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-time.After(time.Minute):
		t.Fatalf("Resolve(%s) did not return", ref)
		return nil, nil
	}
}

// TestResolveBounded covers secret references pointing at a FIFO (which
// blocked `config check` for ever), at /dev/zero (which read without end)
// and at oversized files (which were accepted whole), for every reference
// kind that reads a file. Each fails at once with an error naming the
// reference.
func TestResolveBounded(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, creds} {
		if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", filepath.Join(d, "zero")); err != nil {
			t.Fatal(err)
		}
		sparse(t, filepath.Join(d, "big"), 1<<30) // 1 GiB, as in the report
		sparse(t, filepath.Join(d, "just-over"), ValueLimit+1)
	}
	sparse(t, filepath.Join(dir, "big.yaml"), SOPSFileLimit+1)
	key := testenv.NewAgeKey(t, dir, "keys.txt")
	env := map[string]string{
		"CREDENTIALS_DIRECTORY": creds,
		"HUGE":                  strings.Repeat("x", ValueLimit+1),
	}
	r := &Resolver{BaseDir: dir, AgeKeyFile: key.File, Getenv: envMap(env)}

	tests := []struct {
		ref Ref
		is  error
	}{
		{"file:fifo", safefile.ErrNotRegular},
		{Ref(filepath.Join(dir, "fifo")), safefile.ErrNotRegular},
		{"file:/dev/zero", safefile.ErrNotRegular},
		{"file:zero", safefile.ErrNotRegular},
		{"file:big", ErrTooLarge},
		{"file:just-over", ErrTooLarge},
		{"cred:fifo", safefile.ErrNotRegular},
		{"cred:zero", safefile.ErrNotRegular},
		{"cred:big", ErrTooLarge},
		{"cred:just-over", ErrTooLarge},
		{"sops:fifo#a/b", safefile.ErrNotRegular},
		{"sops:/dev/zero#a/b", safefile.ErrNotRegular},
		{"sops:zero#a/b", safefile.ErrNotRegular},
		{"sops:big.yaml#a/b", ErrTooLarge},
		{"env:HUGE", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(string(tt.ref), func(t *testing.T) {
			_, err := resolveNow(t, r, tt.ref)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Resolve(%s) = %v, want %v", tt.ref, err, tt.is)
			}
			if !strings.Contains(err.Error(), "resolve secret "+string(tt.ref)) {
				t.Errorf("error %q does not name the reference", err)
			}
			if len(err.Error()) > 512 {
				t.Errorf("error is %d bytes long: it may quote the input", len(err.Error()))
			}
		})
	}

	// A value at the cap is accepted.
	if err := os.WriteFile(filepath.Join(dir, "at-cap"), []byte(strings.Repeat("x", ValueLimit)), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := resolveNow(t, r, "file:at-cap"); err != nil || len(v) != ValueLimit {
		t.Errorf("Resolve(file:at-cap) = %d bytes, %v; want %d bytes", len(v), err, ValueLimit)
	}

	// The age key file is bounded too.
	for _, kf := range []string{filepath.Join(dir, "fifo"), filepath.Join(dir, "big")} {
		r := &Resolver{BaseDir: dir, AgeKeyFile: kf, Getenv: envMap(nil)}
		if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte("a: b\nsops: {}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := resolveNow(t, r, "sops:s.yaml#a")
		if !errors.Is(err, safefile.ErrNotRegular) && !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), kf) {
			t.Errorf("age key file %s: Resolve = %v, want a bounded-read error naming it", kf, err)
		}
	}
}

// TestResolveEmpty: an empty secret (or one that is only a line break) is
// an error for every reference kind. An empty password file used to let
// `u:` through a LAN proxy.
func TestResolveEmpty(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"empty": "", "newline": "\n", "crlf": "\r\n"} {
		for _, d := range []string{dir, creds} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := map[string]string{"CREDENTIALS_DIRECTORY": creds, "NL": "\n"}
	r := &Resolver{BaseDir: dir, Getenv: envMap(env)}
	refs := []Ref{"file:empty", "file:newline", "file:crlf", Ref(filepath.Join(dir, "empty")), "cred:empty", "cred:newline", "env:NL"}
	for _, ref := range refs {
		_, err := resolveNow(t, r, ref)
		if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), string(ref)) {
			t.Errorf("Resolve(%s) = %v, want %v naming the reference", ref, err, ErrEmpty)
		}
	}
	// env: was already refused when empty (as not found).
	if _, err := resolveNow(t, r, "env:UNSET"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(env:UNSET) = %v, want %v", err, ErrNotFound)
	}
}

// TestResolveSOPSEmptyAndLarge: a SOPS file made by the real sops tool
// with an empty value and a value over the cap.
func TestResolveSOPSEmptyAndLarge(t *testing.T) {
	dir := t.TempDir()
	key := testenv.NewAgeKey(t, dir, "keys.txt")
	plain := "proxy:\n  password: \"\"\n  huge: " + strings.Repeat("x", ValueLimit+1) + "\n  ok: fine\n"
	testenv.SOPSEncrypt(t, dir, "s", "yaml", plain, nil, key.Recipient)
	r := &Resolver{BaseDir: dir, AgeKeyFile: key.File, Getenv: envMap(nil)}
	for ref, is := range map[Ref]error{"sops:s.yaml#proxy/password": ErrEmpty, "sops:s.yaml#proxy/huge": ErrTooLarge} {
		_, err := resolveNow(t, r, ref)
		if !errors.Is(err, is) || !strings.Contains(err.Error(), string(ref)) {
			t.Errorf("Resolve(%s) = %v, want %v naming the reference", ref, err, is)
		}
		if err != nil && strings.Contains(err.Error(), "xxxxxxxx") {
			t.Errorf("error quotes the value")
		}
	}
	if v, err := resolveNow(t, r, "sops:s.yaml#proxy/ok"); err != nil || string(v) != "fine" {
		t.Errorf("Resolve(ok) = %q, %v", v, err)
	}
}

// sparse makes a file of size bytes without writing them.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}
