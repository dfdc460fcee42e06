package secrets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	cases := []struct {
		in  string
		err string
	}{
		{"sops:secrets/v2ray.yaml#v2ray/user_id", ""},
		{"file:/run/secrets/x", ""},
		{"/run/secrets/x", ""},
		{"cred:backup-password", ""},
		{"env:HOSTD_BACKUP_PASSWORD", ""},
		{"hunter2", "literal secrets are not allowed"},
		{"sops:secrets/v2ray.yaml", "sops:FILE#key/path"},
		{"cred:a/b", "plain name"},
		{"vault:x", `unknown secret scheme "vault"`},
		{"", "empty secret reference"},
	}
	for _, tc := range cases {
		_, err := ParseRef(tc.in)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseRef(%q) = %v, want %q", tc.in, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the literal: %v", err)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "creds"), 0o700)
	os.WriteFile(filepath.Join(dir, "creds", "pw"), []byte("cred-value"), 0o600)
	env := map[string]string{"CREDENTIALS_DIRECTORY": filepath.Join(dir, "creds"), "PW": "env-value"}
	r := &Resolver{BaseDir: dir, Getenv: func(k string) string { return env[k] }}
	cases := []struct {
		ref  Ref
		want string
		err  error
	}{
		{"file:pw", "s3cret", nil},
		{Ref(filepath.Join(dir, "pw")), "s3cret", nil},
		{"cred:pw", "cred-value", nil},
		{"env:PW", "env-value", nil},
		{"file:missing", "", ErrNotFound},
		{"cred:missing", "", ErrNotFound},
		{"env:NOPE", "", ErrNotFound},
	}
	for _, tc := range cases {
		got, err := r.Resolve(context.Background(), tc.ref)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.ref.String()) {
				t.Errorf("Resolve(%s) error = %v, want %v naming the reference", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Resolve(%s) = %q, %v", tc.ref, got, err)
		}
	}
}

// FuzzParseRef: references come from config files; parsing never panics,
// an accepted reference prints as itself, and an error never repeats a
// string that is not a reference (it may be a literal secret).
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"sops:secrets/v2ray.yaml#v2ray/user_id", "file:/run/secrets/x", "/run/secrets/x", "cred:backup-password",
		"env:HOSTD_BACKUP_PASSWORD", "hunter2", "sops:secrets/v2ray.yaml", "cred:a/b", "vault:x", "",
		// attack inputs: devices, FIFOs, traversal, empty parts, odd bytes
		"file:/dev/zero", "file:/proc/self/fd/0", "/dev/stdin", "cred:..", "cred:../../etc/shadow", "sops:#", "sops:a#",
		"sops:/dev/zero#a", "file:", "env:", "file:\x00", "sops:f#a/../b", "//", "file:" + strings.Repeat("a/", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if r != "" {
				t.Errorf("ParseRef(%q) returned %q with error %v", s, r, err)
			}
			if len(s) > 8 && !strings.Contains(s, ":") && strings.Contains(err.Error(), s) {
				t.Errorf("error %q repeats the input", err)
			}
			return
		}
		if r.String() != s || r.IsZero() {
			t.Errorf("ParseRef(%q) = %q", s, r)
		}
		scheme, loc, _, err := r.parts()
		if err != nil || loc == "" {
			t.Errorf("accepted %q but parts = %q, %q, %v", s, scheme, loc, err)
		}
		if scheme == SchemeCred && strings.ContainsRune(loc, '/') {
			t.Errorf("credential name %q leaves the credentials directory", loc)
		}
	})
}
