package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBackupCLIPasswordCommandAndKeyRemove(t *testing.T) {
	run, dir := cliRepo(t)
	pw := os.Getenv("HOSTD_BACKUP_PASSWORD_FILE")
	t.Setenv("HOSTD_BACKUP_PASSWORD_FILE", "")
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"command", []string{"snapshots", "--password-command", "printf 'pass\\nignored'"}, 0, ""},
		{"command failing", []string{"snapshots", "--password-command", "echo nope >&2; exit 3"}, 1, "password command: exit status 3"},
		{"command silent", []string{"snapshots", "--password-command", "true"}, 1, "printed no passphrase"},
		{"command wrong", []string{"snapshots", "--password-command", "echo wrong"}, 1, "wrong password"},
		{"file and command", []string{"snapshots", "--password-command", "echo pass", "--password-file", pw}, 2, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.err)
			}
		})
	}

	second := filepath.Join(dir, "pw2")
	mkfile(t, second, "second\n")
	out, stderr, code := run("key", "add", "--password-file", pw, "--new-password-file", second, "--json")
	if code != 0 {
		t.Fatalf("key add: %d %s", code, stderr)
	}
	var added struct{ Key string }
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatal(err)
	}
	out, _, _ = run("key", "list", "--password-file", pw, "--json")
	var list struct {
		Keys  []string `json:"keys"`
		InUse string   `json:"in_use"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Keys) != 2 {
		t.Fatalf("key list: %v %q", err, out)
	}
	if _, stderr, code := run("key", "remove", list.InUse[:8], "--password-file", pw); code != 1 || !strings.Contains(stderr, "key in use") {
		t.Fatalf("removing the key in use: %d %q", code, stderr)
	}
	if _, stderr, code := run("key", "remove", "ffff", "--password-file", pw); code != 1 || !strings.Contains(stderr, "no such key") {
		t.Fatalf("removing an unknown key: %d %q", code, stderr)
	}
	// Opened with the second passphrase, the first key can go; then the
	// second is the last and the one in use.
	if out, stderr, code := run("key", "remove", list.InUse[:8], "--password-file", second); code != 0 || !strings.Contains(out, "removed key") {
		t.Fatalf("key remove: %d %q %q", code, out, stderr)
	}
	if _, _, code := run("snapshots", "--password-file", pw); code != 1 {
		t.Fatalf("removed passphrase still opens the repository")
	}
	if _, stderr, code := run("key", "remove", added.Key[:8], "--password-file", second); code != 1 || !strings.Contains(stderr, "key in use") {
		t.Fatalf("removing the last key: %d %q", code, stderr)
	}
	if _, _, code := run("key", "remove", "--password-file", second); code != 2 {
		t.Fatalf("key remove without KEY: exit %d, want 2", code)
	}
}

func TestPasswordCommandDeadline(t *testing.T) {
	// The command never answers: the deadline, not the command, ends it.
	_, err := runPasswordCommand(context.Background(), "exec sleep 600", io.Discard, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("err %v", err)
	}
	// Output past the bound is refused.
	_, err = runPasswordCommand(context.Background(), "head -c 100000 /dev/zero | tr '\\0' x", io.Discard, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("large output: %v", err)
	}
}

func TestBackupCLIFindListCat(t *testing.T) {
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	mkfile(t, filepath.Join(src, "etc/app.conf"), "x")
	if _, stderr, code := run("create", src); code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"find", "*.conf"}, 0, src + "/etc/app.conf"},
		{[]string{"find", "*.conf", "--json"}, 0, `"matches"`},
		{[]string{"find", "*.conf", "--older", "2001-01-01"}, 0, ""},
		{[]string{"find", "*.conf", "--newer", "soon"}, 2, ""},
		{[]string{"find"}, 2, ""},
		{[]string{"list", "snapshots"}, 0, ""},
		{[]string{"list", "blobs", "--json"}, 0, `"type": "tree"`},
		{[]string{"list", "everything"}, 2, ""},
		{[]string{"cat", "config"}, 0, `"version"`},
		{[]string{"cat", "snapshot", "latest", "--json"}, 0, `"paths"`},
		{[]string{"cat", "snapshot"}, 2, ""},
		{[]string{"cat", "config", "x"}, 2, ""},
		{[]string{"cat", "pack", "zz"}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.contains) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, stderr)
			}
		})
	}
}
