package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// seaweedOpts returns backend options for the cluster, the keys in
// secret files, with short retries for tests.
func seaweedOpts(t *testing.T, s *testenv.SeaweedFS) backend.Options {
	t.Helper()
	ak, sk := s.KeyFiles(t)
	return backend.Options{
		S3:   backend.S3Options{AccessKey: secrets.Ref("file:" + ak), SecretKey: secrets.Ref("file:" + sk)},
		HTTP: backend.HTTPOptions{OpTimeout: 5 * time.Second, Retries: 2, Backoff: service.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}},
	}
}

// roundTrip runs init, create, check --read-data and restore through
// the package's API on repoURL.
func roundTrip(ctx context.Context, t *testing.T, repoURL string, bopts backend.Options) {
	t.Helper()
	if err := backup.Init(ctx, repoURL, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: bopts}); err != nil {
		t.Fatalf("init %s: %v", repoURL, err)
	}
	r, src := openAndBackup(ctx, t, repoURL, backup.OpenOptions{Backend: bopts, CacheDir: t.TempDir()})
	if res, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check --read-data: %+v %v", res, err)
	}
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, src.Root, filepath.Join(target, src.Root)); err != nil {
		t.Fatalf("restored from %s differs:\n%v", repoURL, err)
	}
}

// Init, backup, check --read-data and restore against a real S3 server,
// a REST server (rclone serve restic) and rclone over stdio (to a local
// directory and to the S3 server).
func TestRemoteRepositories(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartSeaweedFS(t)
	t.Run("s3", func(t *testing.T) {
		roundTrip(ctx, t, "s3:"+s.Endpoint+"/roundtrip/host1", seaweedOpts(t, s))
	})
	t.Run("rest", func(t *testing.T) {
		srv := testenv.StartRcloneREST(t, filepath.Join(t.TempDir(), "repo"))
		roundTrip(ctx, t, "rest:"+srv.URL, backend.Options{})
	})
	t.Run("rclone-local", func(t *testing.T) {
		testenv.Rclone(t)
		roundTrip(ctx, t, "rclone::local:"+filepath.Join(t.TempDir(), "repo"), backend.Options{})
	})
	t.Run("rclone-s3", func(t *testing.T) {
		testenv.Rclone(t)
		testenv.RcloneS3Remote(t, "WS3", s)
		roundTrip(ctx, t, "rclone:WS3:rclone-roundtrip/repo", backend.Options{})
	})
}

// The S3 server killed in the middle of a backup: the backup fails
// (after its retries) without a snapshot; once the server is back, the
// next backup reuses the packs that were uploaded, and check
// --read-data passes.
func TestS3ServerKilledMidBackup(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartSeaweedFS(t)
	bopts := seaweedOpts(t, s)
	repoURL := "s3:" + s.Endpoint + "/killed/repo"
	if err := backup.Init(ctx, repoURL, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: bopts}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	for i := range 10 {
		backuptest.RandomFile(t, filepath.Join(src, fmt.Sprint(i)), 8<<20)
	}
	oo := backup.OpenOptions{Backend: bopts, CacheDir: t.TempDir()}
	r, err := backup.Open(ctx, repoURL, backuptest.Password, oo)
	if err != nil {
		t.Fatal(err)
	}
	put0 := s.S3Requests(t)["PUT"]
	done := make(chan error, 1)
	go func() {
		_, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Hostname: "h1"})
		done <- err
	}()
	// Kill the server once a few packs are up.
	killed := false
	deadline := time.Now().Add(60 * time.Second)
	for !killed && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("backup ended before the server was killed: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if s.S3Requests(t)["PUT"]-put0 >= 3 { // the lock and two packs
			s.Kill()
			killed = true
		}
	}
	if !killed {
		t.Fatal("no packs uploaded within 60 s")
	}
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("backup hangs after its server was killed")
	}
	if err == nil {
		t.Fatal("backup succeeded with its server killed")
	}
	t.Logf("backup with the server killed: %v", err)
	r.Close()
	s.Restart(t)

	// The cluster takes a while to serve again after a restart.
	testenv.WaitFor(t, 2*time.Minute, func() error {
		r, err = backup.Open(ctx, repoURL, backuptest.Password, oo)
		return err
	})
	defer r.Close()
	packsBefore, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if packsBefore.Packs == 0 {
		t.Fatal("no pack survived the kill")
	}
	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Hostname: "h1"})
	if err != nil {
		t.Fatalf("backup after restart: %v", err)
	}
	if sum.BytesAdded >= sum.BytesTotal {
		t.Fatalf("second backup added %d of %d bytes: nothing reused from the %d packs uploaded before the kill", sum.BytesAdded, sum.BytesTotal, packsBefore.Packs)
	}
	t.Logf("after the kill: %d packs kept; the next backup added %d of %d bytes", packsBefore.Packs, sum.BytesAdded, sum.BytesTotal)
	res, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil || !res.OK() {
		t.Fatalf("check --read-data: %+v %v", res, err)
	}
}

// Two hosts back up to one S3 repository at the same time: both
// snapshots complete (shared locks), and after prune the data both
// hold is stored once.
func TestS3TwoHostsOneRepository(t *testing.T) {
	ctx := context.Background()
	s := testenv.StartSeaweedFS(t)
	bopts := seaweedOpts(t, s)
	repoURL := "s3:" + s.Endpoint + "/shared/repo"
	if err := backup.Init(ctx, repoURL, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: bopts}); err != nil {
		t.Fatal(err)
	}
	common := filepath.Join(t.TempDir(), "common.bin")
	backuptest.RandomFile(t, common, 12<<20)
	shared, err := os.ReadFile(common)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, host := range []string{"host-a", "host-b"} {
		dir := filepath.Join(t.TempDir(), host)
		backuptest.RandomFile(t, filepath.Join(dir, "own.bin"), 6<<20)
		if err := os.WriteFile(filepath.Join(dir, "shared.bin"), shared, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := backup.Open(ctx, repoURL, backuptest.Password, backup.OpenOptions{Backend: bopts, CacheDir: t.TempDir()})
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			_, errs[i] = r.Backup(ctx, backup.BackupOptions{Paths: []string{dir}, Hostname: host})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent backups: %v", err)
	}
	r, err := backup.Open(ctx, repoURL, backuptest.Password, backup.OpenOptions{Backend: bopts, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %d %v", len(snaps), err)
	}
	zero := 0.0
	if _, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: &zero}); err != nil {
		t.Fatalf("prune: %v", err)
	}
	st, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 12 MiB shared + 2 x 6 MiB own, random (incompressible): stored
	// once, the repository holds about 24 MiB, not 36.
	if st.PackBytes > 27<<20 {
		t.Fatalf("after prune the packs hold %d bytes: shared data stored twice", st.PackBytes)
	}
	t.Logf("two hosts: %d packs, %d bytes after prune", st.Packs, st.PackBytes)
	if res, err := r.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check --read-data: %+v %v", res, err)
	}
}

// Copy of snapshots from a local repository to an S3 one (3-2-1): the
// copy restores byte for byte, check --read-data passes on it, and a
// second copy skips what is there.
func TestCopyLocalToS3(t *testing.T) {
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "local")
	if err := backup.Init(ctx, local, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		t.Fatal(err)
	}
	src, tree := openAndBackup(ctx, t, local, backup.OpenOptions{NoCache: true})
	if _, err := src.Backup(ctx, backup.BackupOptions{Paths: []string{tree.Root}, Tags: []string{"second"}}); err != nil {
		t.Fatal(err)
	}
	s := testenv.StartSeaweedFS(t)
	bopts := seaweedOpts(t, s)
	remote := "s3:" + s.Endpoint + "/copies/host"
	if err := backup.Init(ctx, remote, []byte("another passphrase"), backup.InitOptions{KDF: backuptest.FastKDF(), Backend: bopts}); err != nil {
		t.Fatal(err)
	}
	dst, err := backup.Open(ctx, remote, []byte("another passphrase"), backup.OpenOptions{Backend: bopts, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	res, err := src.Copy(ctx, dst, backup.CopyOptions{})
	if err != nil || len(res.Copied) != 2 || len(res.Skipped) != 0 {
		t.Fatalf("copy: %+v %v", res, err)
	}
	t.Logf("copied %d snapshots: %d blobs, %d bytes", len(res.Copied), res.BlobsAdded, res.BytesAdded)
	if res, err := dst.Check(ctx, backup.CheckOptions{ReadData: true}); err != nil || !res.OK() {
		t.Fatalf("check --read-data of the copy: %+v %v", res, err)
	}
	target := t.TempDir()
	if _, err := dst.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if err := backuptest.Compare(t, tree.Root, filepath.Join(target, tree.Root)); err != nil {
		t.Fatalf("restored copy differs:\n%v", err)
	}
	again, err := src.Copy(ctx, dst, backup.CopyOptions{})
	if err != nil || len(again.Copied) != 0 || len(again.Skipped) != 2 || again.BlobsAdded != 0 {
		t.Fatalf("second copy: %+v %v", again, err)
	}
}
