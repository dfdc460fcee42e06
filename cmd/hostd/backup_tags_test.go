package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliRepo makes a repository through the CLI and returns a runner with
// its password file and repository set, and a directory for sources.
func cliRepo(t *testing.T) (run func(args ...string) (string, string, int), dir string) {
	t.Helper()
	dir = t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOSTD_BACKUP_REPOSITORY", filepath.Join(dir, "repo"))
	t.Setenv("HOSTD_BACKUP_PASSWORD", "")
	t.Setenv("HOSTD_BACKUP_PASSWORD_FILE", pw)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	run = func(args ...string) (string, string, int) {
		t.Helper()
		return runBackupCLI(t, args...)
	}
	if _, stderr, code := run("init"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	return run, dir
}

func mkfile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBackupCLIGroupsAndTags(t *testing.T) {
	run, dir := cliRepo(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mkfile(t, filepath.Join(a, "f"), "a")
	mkfile(t, filepath.Join(b, "g"), "b")
	for _, args := range [][]string{{a, "--tag", "daily"}, {a}, {b, "--tag", "daily", "--tag", "db"}, {a, b}} {
		if _, stderr, code := run(append([]string{"create", "--hostname", "h"}, args...)...); code != 0 {
			t.Fatalf("create %v: %d %s", args, code, stderr)
		}
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
		absent   []string
	}{
		{"snapshots by tag", []string{"snapshots", "--tag", "daily,db"}, 0, []string{"daily,db"}, []string{"daily  "}},
		{"snapshots grouped as restic does", []string{"snapshots", "--group-by", "paths"}, 0,
			[]string{"snapshots for (paths [" + a + "]):", "2 snapshots", "snapshots for (paths [" + a + ", " + b + "]):"}, nil},
		{"snapshots grouped json", []string{"snapshots", "--group-by", "host", "--json"}, 0, []string{`"group_key"`, `"hostname": "h"`}, nil},
		{"bad group-by is a usage error", []string{"snapshots", "--group-by", "colour"}, 2, nil, nil},
		{"forget explains each group", []string{"forget", "--keep-last", "1", "--dry-run"}, 0,
			[]string{"applying policy: keep-last 1", "snapshots for (host [h], paths [" + a + "]):", "keep 1 snapshots:", "would remove 1 snapshots:", "REASONS", "last"}, nil},
		{"forget one group", []string{"forget", "--keep-last", "1", "--dry-run", "--group-by", "", "--json"}, 0, []string{`"group_by": ""`}, nil},
		{"forget filtered by path", []string{"forget", "--keep-last", "1", "--dry-run", "--path", b}, 0, []string{b}, []string{"paths [" + a + "]"}},
		{"tag needs an action", []string{"tag"}, 2, nil, nil},
		{"tag set and add", []string{"tag", "--set", "x", "--add", "y"}, 2, nil, nil},
		{"tag add", []string{"tag", "--add", "keep", "--tag", "daily"}, 0, []string{"2 snapshots changed"}, nil},
		{"tag json", []string{"tag", "--remove", "keep", "--json", "latest"}, 0, []string{"[]"}, nil},
		{"tagged", []string{"snapshots", "--tag", "keep", "--json"}, 0, []string{`"keep"`, `"original"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := run(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, stderr)
			}
			for _, c := range tc.contains {
				if !strings.Contains(out, c) {
					t.Errorf("stdout lacks %q:\n%s", c, out)
				}
			}
			for _, c := range tc.absent {
				if strings.Contains(out, c) {
					t.Errorf("stdout has %q:\n%s", c, out)
				}
			}
		})
	}
}
