package restic_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/importer"
	"github.com/hostd/hostd/pkg/backup/importer/restic"
)

const resticPassword = "restic test password"

// runRestic runs Debian's restic on repo.
func runRestic(t *testing.T, repo string, args ...string) {
	t.Helper()
	cmd := exec.Command("restic", append([]string{"-r", repo, "--no-cache", "-q"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+resticPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic %v: %v\n%s", args, err, out)
	}
}

func needRestic(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("restic"); err != nil {
		t.Skip("restic is not installed")
	}
}

// makeResticRepo backs up the awkward tree of backuptest.MakeTree three
// times (tags, hosts, a changed file, a second path set) with restic.
func makeResticRepo(t *testing.T) (repo string, src backuptest.Tree) {
	t.Helper()
	dir := t.TempDir()
	repo = filepath.Join(dir, "restic")
	src = backuptest.MakeTree(t, dir)
	runRestic(t, repo, "init")
	runRestic(t, repo, "backup", "--host", "h1", "--tag", "daily", src.Root)
	if err := os.WriteFile(filepath.Join(src.Root, "small.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backuptest.RandomFile(t, filepath.Join(src.Root, "new.bin"), 3<<20)
	if err := os.Remove(filepath.Join(src.Root, "text.txt")); err != nil {
		t.Fatal(err)
	}
	runRestic(t, repo, "backup", "--host", "h2", "--tag", "weekly,db", "--tag", "x", src.Root)
	runRestic(t, repo, "backup", "--host", "h1", filepath.Join(src.Root, "deep"), filepath.Join(src.Root, "weird"))
	return repo, src
}

func openHostd(t *testing.T) *backup.Repository {
	t.Helper()
	ctx := context.Background()
	url := filepath.Join(t.TempDir(), "hostd")
	if err := backup.Init(ctx, url, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		t.Fatal(err)
	}
	r, err := backup.Open(ctx, url, backuptest.Password, backup.OpenOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestImportRestoresAsRestic imports a restic 0.14 repository and checks
// that every snapshot restored by hostd equals restic's restore of it.
func TestImportRestoresAsRestic(t *testing.T) {
	needRestic(t)
	ctx := context.Background()
	repo, _ := makeResticRepo(t)
	src, err := restic.Open(ctx, repo, []byte(resticPassword), restic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := openHostd(t)
	res, err := importer.Import(ctx, dst, src, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("imported %d, skipped %d, want 3 and 0", len(res.Imported), len(res.Skipped))
	}
	chk, err := dst.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !chk.OK() {
		t.Fatalf("check --read-data: %+v", chk.Errors)
	}
	srcSnaps, _, err := src.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := dst.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range snaps {
		want := srcSnaps[i]
		if !s.Time.Equal(want.Time) || s.Hostname != want.Hostname || !slices.Equal(s.Paths, want.Paths) ||
			!slices.Equal(s.Tags, want.Tags) || s.Username != want.Username {
			t.Errorf("snapshot %d: %+v, want %+v", i, s, want)
		}
		a, b := filepath.Join(t.TempDir(), "restic"), filepath.Join(t.TempDir(), "hostd")
		runRestic(t, repo, "restore", want.ID, "--target", a)
		if _, err := dst.Restore(ctx, s.ID, backup.RestoreOptions{Target: b}); err != nil {
			t.Fatal(err)
		}
		// The targets themselves differ (made by the test); what is in
		// them must not.
		ents, err := os.ReadDir(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if err := backuptest.Compare(t, filepath.Join(a, e.Name()), filepath.Join(b, e.Name())); err != nil {
				t.Errorf("snapshot %s (%s): %v", want.ID[:8], s.ShortID, err)
			}
		}
		if s.Summary == nil || s.Summary.FilesNew == 0 || s.Summary.BytesTotal == 0 {
			t.Errorf("snapshot %s: summary %+v, want its files and bytes", s.ShortID, s.Summary)
		}
		if i == 0 {
			// restic does not record sparseness; the import marks files
			// with chunks of zeros sparse, and hostd restores them so.
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(b, want.Paths[0], "sparse"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 >= st.Size {
				t.Errorf("sparse file restored with %d blocks for %d bytes", st.Blocks, st.Size)
			}
		}
		if bents, _ := os.ReadDir(b); len(bents) != len(ents) {
			t.Errorf("snapshot %s: %d entries at the top, restic restored %d", want.ID[:8], len(bents), len(ents))
		}
	}

	// Run again: everything is there already.
	res, err = importer.Import(ctx, dst, src, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 0 || len(res.Skipped) != 3 || res.BytesAdded != 0 {
		t.Fatalf("second import: imported %d, skipped %d, added %d bytes; want 0, 3, 0", len(res.Imported), len(res.Skipped), res.BytesAdded)
	}
}

func TestWrongPassword(t *testing.T) {
	needRestic(t)
	dir := t.TempDir()
	runRestic(t, dir, "init")
	_, err := restic.Open(context.Background(), dir, []byte("not it"), restic.Options{})
	if !errors.Is(err, restic.ErrWrongPassword) {
		t.Fatalf("err = %v, want ErrWrongPassword", err)
	}
}

// TestHostileRepository: a planted expensive key file costs nothing, and
// damaged packs fail their snapshots (named, exit partial) without a
// crash; nothing unauthenticated reaches the hostd repository.
func TestHostileRepository(t *testing.T) {
	needRestic(t)
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "restic")
	dir := t.TempDir()
	backuptest.RandomFile(t, filepath.Join(dir, "f"), 1<<20)
	runRestic(t, repo, "init")
	runRestic(t, repo, "backup", dir)

	planted := []byte(`{"kdf":"scrypt","N":1073741824,"r":8,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`)
	sum := sha256.Sum256(planted)
	if err := os.WriteFile(filepath.Join(repo, "keys", hex.EncodeToString(sum[:])), planted, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	src, err := restic.Open(ctx, repo, []byte(resticPassword), restic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("open with a planted key file took %s", d)
	}

	// Flip one byte in the middle of every pack.
	err = filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[len(b)/2] ^= 0x40
		return os.WriteFile(p, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := openHostd(t)
	var warned []string
	res, err := importer.Import(ctx, dst, src, importer.Options{Warn: func(id string, err error) { warned = append(warned, id+": "+err.Error()) }})
	if !errors.Is(err, importer.ErrPartial) {
		t.Fatalf("import of damaged packs: %v, want ErrPartial", err)
	}
	if len(res.Imported) != 0 || len(warned) != 1 {
		t.Fatalf("imported %d, warnings %q; want none imported and the snapshot named", len(res.Imported), warned)
	}
	if snaps, _ := dst.Snapshots(ctx); len(snaps) != 0 {
		t.Fatalf("%d snapshots written from damaged data", len(snaps))
	}
}
