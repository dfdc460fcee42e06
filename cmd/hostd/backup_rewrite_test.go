package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupCLIRewrite(t *testing.T) {
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	secret := filepath.Join(src, ".ssh", "id_ed25519")
	mkfile(t, secret, "PRIVATE KEY")
	mkfile(t, filepath.Join(src, "notes"), "notes")
	if _, stderr, code := run("create", "--hostname", "h", src); code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	exclFile := filepath.Join(dir, "excl")
	if err := os.WriteFile(exclFile, []byte("# secrets\n**/id_ed25519\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"needs a pattern", []string{"rewrite", "latest"}, 2, nil},
		{"bad pattern", []string{"rewrite", "--exclude", "zz:x"}, 1, []string{"unknown pattern style"}},
		{"dry run", []string{"rewrite", "--exclude-file", exclFile, "--dry-run"}, 0, []string{"would remove", secret, "1 of 1 snapshots would be rewritten"}},
		{"nothing matches", []string{"rewrite", "--exclude", "**/nothing", "--host", "h"}, 0, []string{"0 of 1 snapshots rewritten"}},
		{"other host", []string{"rewrite", "--exclude-file", exclFile, "--host", "other"}, 0, []string{"0 of 0 snapshots"}},
		{"forget", []string{"rewrite", "latest", "--exclude-file", exclFile, "--forget"}, 0, []string{"replaced by", "removed", secret}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := run(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, stderr)
			}
			for _, s := range tc.contains {
				if !strings.Contains(out+stderr, s) {
					t.Fatalf("output lacks %q:\n%s%s", s, out, stderr)
				}
			}
		})
	}
	out, stderr, code := run("snapshots", "--json")
	if code != 0 {
		t.Fatalf("snapshots: %d %s", code, stderr)
	}
	var snaps []struct {
		ID       string `json:"id"`
		Original string `json:"original"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Original == "" {
		t.Fatalf("after rewrite --forget: %s", out)
	}
	out, _, _ = run("ls", "latest")
	if strings.Contains(out, "id_ed25519") || !strings.Contains(out, "notes") {
		t.Fatalf("ls after rewrite:\n%s", out)
	}
	out, stderr, code = run("rewrite", "latest", "--exclude", "**/notes", "--json")
	if code != 0 {
		t.Fatalf("rewrite --json: %d %s", code, stderr)
	}
	var res []struct {
		NewID   string `json:"new_id"`
		Removed []struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		} `json:"removed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("rewrite --json: %v\n%s", err, out)
	}
	if len(res) != 1 || res[0].NewID == "" || len(res[0].Removed) != 1 || res[0].Removed[0].Path != filepath.Join(src, "notes") {
		t.Fatalf("rewrite --json: %s", out)
	}
	out, _, _ = run("snapshots")
	if !strings.Contains(out, "rewrite") {
		t.Fatalf("kept snapshot's replacement lacks the rewrite tag:\n%s", out)
	}
}
