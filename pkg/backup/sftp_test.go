package backup_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

func TestSFTPRepository(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartSSHD(t)
	bopts := backend.Options{SFTP: backend.SFTPOptions{KnownHosts: s.WriteKnownHosts(t), IdentityFiles: []string{s.KeyFile}, NoAgent: true}}
	url, err := initSFTP(ctx, t, s, bopts)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, s.Log())
	}
	r, src := openAndBackup(ctx, t, url, backup.OpenOptions{Backend: bopts, CacheDir: t.TempDir()})
	if res, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check: %+v %v", res, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
		t.Fatalf("restored over sftp differs:\n%v", err)
	}
}

// The SFTP backend authenticates with the keys of a running ssh-agent
// (no identity file), and says so clearly when the agent has none that
// the server accepts.
func TestSFTPAgentAuth(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartSSHD(t)
	knownHosts := s.WriteKnownHosts(t)
	tests := []struct {
		name string
		keys []string
		ok   bool
	}{
		{"key in agent", []string{s.KeyFile}, true},
		{"empty agent", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", testenv.StartSSHAgent(t, tc.keys...))
			bopts := backend.Options{SFTP: backend.SFTPOptions{KnownHosts: knownHosts, IdentityFiles: []string{}}}
			url, err := initSFTP(ctx, t, s, bopts)
			if (err == nil) != tc.ok {
				t.Fatalf("init over sftp with %d agent keys: %v, want ok=%v\n%s", len(tc.keys), err, tc.ok, s.Log())
			}
			if !tc.ok {
				t.Logf("refused: %v", err)
				if !strings.Contains(err.Error(), "unable to authenticate") {
					t.Fatalf("error does not say authentication failed: %v", err)
				}
				return
			}
			openAndBackup(ctx, t, url, backup.OpenOptions{Backend: bopts, NoCache: true})
		})
	}
}

// initSFTP creates a repository in a fresh directory on s and returns its
// URL and what Init returned.
func initSFTP(ctx context.Context, t *testing.T, s *testenv.SSHD, bopts backend.Options) (string, error) {
	t.Helper()
	url := fmt.Sprintf("sftp://%s@%s%s", s.User, s.Addr, filepath.Join(testenv.TempDir(t), "repo"))
	return url, backup.Init(ctx, url, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: bopts})
}

// openAndBackup opens url and backs up a fresh test tree into it; the
// repository is closed when the test ends.
func openAndBackup(ctx context.Context, t *testing.T, url string, o backup.OpenOptions) (*backup.Repository, backuptest.Tree) {
	t.Helper()
	r, err := backup.Open(ctx, url, backuptest.Password, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	src := backuptest.MakeTree(t, t.TempDir())
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src.Root}}); err != nil {
		t.Fatal(err)
	}
	return r, src
}
