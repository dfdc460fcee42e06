package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupCLICreateOptions(t *testing.T) {
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	mkfile(t, filepath.Join(src, "a"), "alpha")
	mkfile(t, filepath.Join(src, "big"), strings.Repeat("x", 4096))
	list := filepath.Join(dir, "list")
	mkfile(t, list, src+"/a\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"dry run lists files", []string{"create", "-n", src}, 0, []string{"would read new", src + "/a (5 B)", "dry run: 2 new"}},
		{"dry run json", []string{"create", "--dry-run", "--json", "--exclude-larger-than", "1K", src}, 0, []string{`"dry_run": true`, `"status": "new"`}},
		{"dry run wrote nothing", []string{"snapshots", "--json"}, 0, []string{"[]"}},
		{"files-from", []string{"create", "--files-from", list, "--time", "2021-03-04 05:06:07", "--tag", "ff"}, 0, []string{"1 new"}},
		{"time recorded", []string{"snapshots", "--tag", "ff"}, 0, []string{"2021-03-04 05:06:07"}},
		{"bad time", []string{"create", "--time", "yesterday", src}, 2, nil},
		{"bad size", []string{"create", "--exclude-larger-than", "lots", src}, 2, nil},
		{"stdin with paths", []string{"create", "--stdin", src}, 2, nil},
		{"stdin-filename without stdin", []string{"create", "--stdin-filename", "x", src}, 2, nil},
		{"no paths", []string{"create"}, 2, nil},
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
		})
	}

	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader("dump of the database\n"))
	root.SetArgs([]string{"backup", "create", "--stdin", "--stdin-filename", "/dumps/db.sql"})
	if err := root.Execute(); err != nil {
		t.Fatalf("create --stdin: %v %s", err, errOut.String())
	}
	if got, stderr, code := run("dump", "latest", "/dumps/db.sql"); code != 0 || got != "dump of the database\n" {
		t.Fatalf("dump of stdin snapshot: %d %q %s", code, got, stderr)
	}
}

func TestBackupCLIDumpAndRestoreOptions(t *testing.T) {
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	mkfile(t, filepath.Join(src, "a.txt"), "alpha")
	mkfile(t, filepath.Join(src, "b.log"), "beta")
	if _, stderr, code := run("create", src); code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	out, stderr, code := run("dump", "latest", src)
	if code != 0 {
		t.Fatalf("dump of a directory: %d %s", code, stderr)
	}
	tr := tar.NewReader(strings.NewReader(out))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	rel := strings.TrimPrefix(src, "/")
	if got := strings.Join(names, " "); got != rel+"/ "+rel+"/a.txt "+rel+"/b.log" {
		t.Fatalf("tar members %q", got)
	}
	if _, _, code := run("dump", "--archive", "rar", "latest", src); code != 2 {
		t.Fatalf("dump --archive rar: exit %d, want 2", code)
	}
	if out, _, code := run("dump", "--archive", "zip", "latest", src); code != 0 || !strings.HasPrefix(out, "PK") {
		t.Fatalf("dump --archive zip: exit %d", code)
	}
	target := filepath.Join(dir, "target")
	out, stderr, code = run("restore", "latest", "--target", target, "--exclude", "**/*.log", "--verify")
	if code != 0 || !strings.Contains(out, "verified 1 files") {
		t.Fatalf("restore --verify: %d %q %s", code, out, stderr)
	}
	if _, err := os.Lstat(filepath.Join(target, src, "b.log")); !os.IsNotExist(err) {
		t.Fatalf("excluded file restored: %v", err)
	}
}
