package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runBackupCLI runs "hostd backup ARGS..." in-process and returns stdout,
// stderr and the exit status main would use.
func runBackupCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"backup"}, args...))
	err := root.Execute()
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

func TestBackupCLI(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("secret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOSTD_BACKUP_REPOSITORY", repo)
	t.Setenv("HOSTD_BACKUP_PASSWORD", "")
	t.Setenv("HOSTD_BACKUP_PASSWORD_FILE", "")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))

	_, stderr, code := runBackupCLI(t, "snapshots", "--password-file", pwFile)
	if code != 1 || !strings.Contains(stderr, "hostd backup init") {
		t.Fatalf("missing repository: code %d, stderr %q (want exit 1 and an init hint)", code, stderr)
	}
	if _, stderr, code := runBackupCLI(t, "init", "--password-file", pwFile); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	out, stderr, code := runBackupCLI(t, "create", "--password-file", pwFile, "--json", "--tag", "cli", src)
	if code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	var created struct {
		Summary struct {
			SnapshotID string `json:"snapshot_id"`
			FilesNew   int    `json:"files_new"`
		} `json:"summary"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &created); err != nil || created.Summary.FilesNew != 1 {
		t.Fatalf("create --json: %v %q", err, out)
	}
	if strings.Contains(out+stderr, "secret-pass") {
		t.Fatal("passphrase printed")
	}

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"snapshots table", []string{"snapshots"}, 0, created.Summary.SnapshotID[:8]},
		{"snapshots json", []string{"snapshots", "--json"}, 0, `"short_id"`},
		{"ls", []string{"ls", "latest", src}, 0, "a.txt"},
		{"ls json", []string{"ls", "latest", "--json"}, 0, `"path"`},
		{"dump", []string{"dump", "latest", filepath.Join(src, "a.txt")}, 0, "alpha"},
		{"diff", []string{"diff", "latest", created.Summary.SnapshotID}, 0, ""},
		{"check", []string{"check", "--read-data"}, 0, "no errors found"},
		{"check json", []string{"check", "--json"}, 0, `"snapshots": 1`},
		{"stats json", []string{"stats", "--json"}, 0, `"packs"`},
		{"forget needs a policy", []string{"forget"}, 1, ""},
		{"forget dry run", []string{"forget", "--keep-last", "1", "--dry-run", "--json"}, 0, `"keep"`},
		{"prune dry run", []string{"prune", "--dry-run", "--json"}, 0, `"dry_run": true`},
		{"break-lock", []string{"break-lock"}, 0, "no locks removed"},
		{"repair dry run", []string{"repair", "--dry-run", "--json"}, 0, `"packs_damaged": 0`},
		{"repair", []string{"repair"}, 0, "0 damaged, 0 missing"},
		{"check without lock", []string{"check", "--no-lock"}, 0, "no errors found"},
		{"forget keep-within days", []string{"forget", "--keep-within", "7d", "--dry-run"}, 0, "within 168h"},
		{"forget bad count", []string{"forget", "--keep-last", "-5"}, 1, ""},
		{"init over a repository", []string{"init"}, 1, ""},
		{"unknown verb", []string{"frobnicate"}, 2, ""},
		{"restore needs target", []string{"restore", "latest"}, 1, ""},
		{"restore into non-empty", []string{"restore", "latest", "--target", src}, 1, ""},
		{"unknown snapshot", []string{"ls", "ffffffff"}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runBackupCLI(t, append(tc.args, "--password-file", pwFile)...)
			if code != tc.code || !strings.Contains(out, tc.contains) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, stderr)
			}
		})
	}
	if _, stderr, _ := runBackupCLI(t, "restore", "latest", "--target", src, "--password-file", pwFile); !strings.Contains(stderr, "restore target is not empty") || !strings.Contains(stderr, "--overwrite") {
		t.Errorf("restore into a non-empty target: stderr %q does not name the flag that allows it", stderr)
	}

	target := filepath.Join(dir, "target")
	if _, stderr, code := runBackupCLI(t, "restore", "latest", "--target", target, "--password-file", pwFile); code != 0 {
		t.Fatalf("restore: %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(target, src, "a.txt")); string(b) != "alpha\n" {
		t.Fatalf("restored %q", b)
	}

	wrong := filepath.Join(dir, "wrong")
	_ = os.WriteFile(wrong, []byte("nope"), 0o600)
	if _, stderr, code := runBackupCLI(t, "snapshots", "--password-file", wrong); code != 1 || !strings.Contains(stderr, "wrong password") {
		t.Fatalf("wrong password: %d %q", code, stderr)
	}

	if os.Geteuid() != 0 {
		secret := filepath.Join(src, "unreadable")
		_ = os.WriteFile(secret, []byte("x"), 0o000)
		if _, stderr, code := runBackupCLI(t, "create", "--password-file", pwFile, src); code != 3 || !strings.Contains(stderr, "unreadable") {
			t.Fatalf("partial backup: exit %d, stderr %q (want 3, naming the file)", code, stderr)
		}
	}
}
