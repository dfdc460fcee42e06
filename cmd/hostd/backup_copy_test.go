package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// backupEnv clears the repository environment variables and points the
// file cache into the test's directory.
func backupEnv(t *testing.T, dir string) {
	t.Helper()
	for _, k := range []string{"HOSTD_BACKUP_REPOSITORY", "HOSTD_BACKUP_PASSWORD", "HOSTD_BACKUP_PASSWORD_FILE", "HOSTD_BACKUP_PASSWORD_COMMAND",
		"HOSTD_BACKUP_TO_REPOSITORY", "HOSTD_BACKUP_TO_PASSWORD", "HOSTD_BACKUP_TO_PASSWORD_FILE", "HOSTD_BACKUP_TO_PASSWORD_COMMAND",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
}

// mustCLI runs hostd backup ARGS and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := runBackupCLI(t, args...)
	if code != 0 {
		t.Fatalf("hostd backup %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// Against a real S3 server (SeaweedFS), through the CLI with the keys
// from env: references: init, create and restore of an S3 repository;
// copy of a local repository's snapshot to S3, restored identically; a
// second copy adds nothing. The keys never show in any output.
func TestBackupCLIS3(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	dir := t.TempDir()
	backupEnv(t, dir)
	t.Setenv("TEST_S3_AK", s.AccessKey)
	t.Setenv("TEST_S3_SK", s.SecretKey)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("local-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpw := filepath.Join(dir, "dpw")
	if err := os.WriteFile(dpw, []byte("s3-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := []string{"--s3-access-key", "env:TEST_S3_AK", "--s3-secret-key", "env:TEST_S3_SK", "--s3-bucket-lookup", "path", "--limit-upload", "512MiB", "--limit-download", "1GiB"}
	src := backuptest.MakeTree(t, dir)
	noKeys := func(t *testing.T, outs ...string) {
		t.Helper()
		for _, o := range outs {
			if strings.Contains(o, s.SecretKey) || strings.Contains(o, s.AccessKey) {
				t.Fatalf("output holds an S3 key:\n%s", o)
			}
		}
	}

	t.Run("roundtrip", func(t *testing.T) {
		repo := "s3:" + s.Endpoint + "/cli/roundtrip"
		base := append([]string{"--repo", repo, "--password-file", dpw}, keys...)
		noKeys(t, mustCLI(t, append([]string{"init"}, base...)...))
		noKeys(t, mustCLI(t, append([]string{"create", "--json", src.Root}, base...)...))
		target := filepath.Join(dir, "restored-roundtrip")
		noKeys(t, mustCLI(t, append([]string{"restore", "latest", "--target", target}, base...)...))
		if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
			t.Fatalf("restored from %s differs:\n%v", repo, err)
		}
		// Without the keys the default (env:AWS_*, empty here) is refused
		// by the server.
		if _, stderr, code := runBackupCLI(t, "snapshots", "--repo", repo, "--password-file", dpw); code != 1 {
			t.Fatalf("snapshots without keys: exit %d, want 1\n%s", code, stderr)
		}
	})

	t.Run("copy", func(t *testing.T) {
		local := filepath.Join(dir, "local")
		mustCLI(t, "init", "--repo", local, "--password-file", pw)
		mustCLI(t, "create", "--repo", local, "--password-file", pw, "--tag", "copied", src.Root)
		mustCLI(t, "create", "--repo", local, "--password-file", pw, "--tag", "other", src.Root)
		dst := "s3:" + s.Endpoint + "/cli/copy"
		mustCLI(t, append([]string{"init", "--repo", dst, "--password-file", dpw}, keys...)...)

		copyArgs := append([]string{"copy", "--repo", local, "--password-file", pw, "--to", dst, "--to-password-file", dpw, "--tag", "copied", "--json"}, keys...)
		out := mustCLI(t, copyArgs...)
		noKeys(t, out)
		var res backup.CopyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("copy --json: %v\n%s", err, out)
		}
		if len(res.Copied) != 1 || len(res.Skipped) != 0 || res.BlobsAdded == 0 {
			t.Fatalf("first copy: %+v, want one snapshot with its blobs", res)
		}
		target := filepath.Join(dir, "restored-copy")
		mustCLI(t, append([]string{"restore", res.Copied[0].Destination, "--target", target, "--repo", dst, "--password-file", dpw}, keys...)...)
		if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
			t.Fatalf("copied snapshot restored from S3 differs:\n%v", err)
		}

		out = mustCLI(t, copyArgs...)
		res = backup.CopyResult{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("second copy --json: %v\n%s", err, out)
		}
		if len(res.Copied) != 0 || len(res.Skipped) != 1 || res.BlobsAdded != 0 || res.BytesAdded != 0 {
			t.Fatalf("second copy: %+v, want nothing added", res)
		}
		text := mustCLI(t, append([]string{"copy", "--repo", local, "--password-file", pw, "--to", dst, "--to-password-file", dpw}, keys...)...)
		if !strings.Contains(text, "1 snapshots copied") || !strings.Contains(text, "1 skipped") {
			t.Fatalf("copy of both snapshots, one already there:\n%s", text)
		}
	})
}

// Usage errors of copy and of the backend flags exit 2, and a value
// given where a secret reference belongs is never printed.
func TestBackupCLIRemoteUsage(t *testing.T) {
	dir := t.TempDir()
	backupEnv(t, dir)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"copy without --to", []string{"copy", "--repo", dir}, "--to is required"},
		{"copy IDs and filters", []string{"copy", "--repo", dir, "--to", dir + "/b", "abc", "--tag", "x"}, "not both"},
		{"copy two passwords", []string{"copy", "--repo", dir, "--to", dir + "/b", "--to-password-file", "f", "--to-password-command", "c"}, "not both"},
		{"literal secret key", []string{"snapshots", "--repo", "s3:http://127.0.0.1:1/b", "--s3-secret-key", "wJalrXUtnFEMI/K7MDENG"}, "--s3-secret-key: not a secret reference"},
		{"literal with a colon", []string{"snapshots", "--repo", "rest:http://127.0.0.1:1/", "--rest-password", "hunter2:x"}, "--rest-password: not a secret reference"},
		{"bad size", []string{"snapshots", "--repo", dir, "--limit-upload", "fast"}, "invalid size"},
		{"bad bucket lookup", []string{"snapshots", "--repo", dir, "--s3-bucket-lookup", "virtual"}, "want path or dns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runBackupCLI(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			for _, secret := range []string{"wJalrXUtnFEMI", "hunter2"} {
				if strings.Contains(out+stderr, secret) {
					t.Fatalf("the value was printed: %q", out+stderr)
				}
			}
		})
	}
}
