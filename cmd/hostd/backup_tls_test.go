package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// An S3 repository over https on a private CA, through the CLI:
// without --cacert (the system's roots) or with another CA's file, init
// fails at once with exit 1, naming the repository and the x509 reason;
// with --cacert naming the right CA, init, create, check --read-data
// and restore pass.
func TestBackupCLICACert(t *testing.T) {
	cert := testenv.NewTLSCert(t)
	s := testenv.StartSeaweedFSWith(t, testenv.SeaweedOptions{TLS: cert})
	dir := t.TempDir()
	backupEnv(t, dir)
	t.Setenv("TEST_S3_AK", s.AccessKey)
	t.Setenv("TEST_S3_SK", s.SecretKey)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("tls-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := "s3:" + s.Endpoint + "/cli/tls"
	base := []string{"--repo", repo, "--password-file", pw, "--s3-access-key", "env:TEST_S3_AK", "--s3-secret-key", "env:TEST_S3_SK"}
	for _, ca := range [][]string{nil, {"--cacert", cert.OtherCAFile}} {
		_, stderr, code := runBackupCLI(t, append(append([]string{"init"}, base...), ca...)...)
		if code != 1 || !strings.Contains(stderr, s.Endpoint) || !strings.Contains(stderr, "x509: certificate signed by unknown authority") {
			t.Fatalf("init %v: exit %d, want 1 naming %s and the x509 reason:\n%s", ca, code, s.Endpoint, stderr)
		}
	}
	base = append(base, "--cacert", cert.CAFile)
	src := backuptest.MakeTree(t, dir)
	mustCLI(t, append([]string{"init"}, base...)...)
	mustCLI(t, append([]string{"create", src.Root}, base...)...)
	mustCLI(t, append([]string{"check", "--read-data"}, base...)...)
	target := filepath.Join(dir, "restored")
	mustCLI(t, append([]string{"restore", "latest", "--target", target}, base...)...)
	if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
		t.Fatalf("restored over https differs:\n%v", err)
	}
}
