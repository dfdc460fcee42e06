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
