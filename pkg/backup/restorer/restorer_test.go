package restorer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

// newRepo creates a repository of format version in a temp dir.
func newRepo(t *testing.T, version int) *repository.Repository {
	t.Helper()
	cfg := repository.DefaultConfig()
	cfg.Version = version
	cfg.PackSize = 1 << 20
	repo, err := repository.Create(context.Background(), backend.NewLocal(filepath.Join(t.TempDir(), "repo")), backuptest.Password, cfg, *backuptest.FastKDF(), repository.Options{})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// saveSnapshot stores nodes as the root directory of a new snapshot.
func saveSnapshot(t *testing.T, repo *repository.Repository, nodes ...repository.Node) *repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	tree := &repository.Tree{Nodes: nodes}
	tree.Sort()
	id, err := repo.SaveTree(ctx, tree)
	if err != nil {
		t.Fatalf("save tree: %v", err)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	snap := &repository.Snapshot{Time: time.Now(), Tree: id, Paths: []string{"/"}, Hostname: "test"}
	if _, err := repo.SaveSnapshot(ctx, snap); err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	return snap
}

// TestRestoreEmptyFiles restores empty regular files in both forms a
// snapshot may record them: without content blobs (current archivers) and
// with one reference to the empty blob (older snapshots). Each must come
// back as an empty file with its mode and times, in every repository
// format (the empty blob has a segment of its own in versions 1 and 2 and
// shares one in version 3).
func TestRestoreEmptyFiles(t *testing.T) {
	ctx := context.Background()
	mtime := time.Date(2003, 4, 5, 6, 7, 8, 9000, time.UTC).UnixNano()
	file := func(name string, mode uint32, content []repository.ID) repository.Node {
		return repository.Node{Name: repository.Bytes(name), Type: repository.NodeFile, Mode: mode,
			UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), MTimeNs: mtime, Content: content}
	}
	for _, version := range []int{repository.VersionXChaCha, repository.VersionAESGCM, repository.VersionGrouped} {
		t.Run(fmt.Sprint("version", version), func(t *testing.T) {
			repo := newRepo(t, version)
			emptyBlob, _, err := repo.SaveBlob(ctx, repository.DataBlob, nil)
			if err != nil {
				t.Fatalf("save empty blob: %v", err)
			}
			sparse := file("sparse", 0o640, nil)
			sparse.Sparse = true
			linked := func(name string) repository.Node {
				n := file(name, 0o604, nil)
				n.Inode, n.Device, n.Links = 77, 1, 2
				return n
			}
			tests := []struct {
				name  string
				nodes []repository.Node
			}{
				{"no content", []repository.Node{file("none", 0o640, nil)}},
				// Encoded like nil (content is omitted when empty).
				{"empty content list", []repository.Node{file("list", 0o600, []repository.ID{})}},
				{"empty blob", []repository.Node{file("old", 0o644, []repository.ID{emptyBlob})}},
				{"empty blob twice", []repository.Node{file("old1", 0o644, []repository.ID{emptyBlob}), file("old2", 0o755, []repository.ID{emptyBlob})}},
				{"both forms", []repository.Node{file("new", 0o640, nil), file("old", 0o444, []repository.ID{emptyBlob})}},
				{"sparse", []repository.Node{sparse}},
				{"hard links", []repository.Node{linked("link1"), linked("link2")}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					snap := saveSnapshot(t, repo, tc.nodes...)
					target := t.TempDir()
					var warnings []string
					sum, err := restorer.Run(ctx, repo, snap, restorer.Options{Target: target, Workers: 2,
						Warn: func(p string, err error) { warnings = append(warnings, p+": "+err.Error()) }})
					if err != nil {
						t.Fatalf("restore: %v", err)
					}
					if sum.Errors != 0 || len(warnings) != 0 {
						t.Fatalf("restore summary %+v, warnings %v", sum, warnings)
					}
					for _, n := range tc.nodes {
						p := filepath.Join(target, string(n.Name))
						var st unix.Stat_t
						if err := unix.Lstat(p, &st); err != nil {
							t.Fatalf("%s not restored: %v", n.Name, err)
						}
						if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0 {
							t.Errorf("%s: mode %o size %d, want an empty regular file", n.Name, st.Mode, st.Size)
						}
						if st.Mode&0o7777 != n.Mode {
							t.Errorf("%s: mode %o, want %o", n.Name, st.Mode&0o7777, n.Mode)
						}
						if got := st.Mtim.Nano(); got != mtime {
							t.Errorf("%s: mtime %d, want %d", n.Name, got, mtime)
						}
						if n.Links > 1 && uint64(st.Nlink) != n.Links {
							t.Errorf("%s: %d links, want %d", n.Name, st.Nlink, n.Links)
						}
					}
				})
			}
		})
	}
}

// TestRestoreFileSizeMismatch: a file whose content does not add up to
// its recorded size is reported, also when it has no content blobs.
func TestRestoreFileSizeMismatch(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t, repository.CurrentVersion)
	emptyBlob, _, err := repo.SaveBlob(ctx, repository.DataBlob, nil)
	if err != nil {
		t.Fatalf("save empty blob: %v", err)
	}
	tests := []struct {
		name    string
		content []repository.ID
	}{
		{"no content", nil},
		{"empty blob", []repository.ID{emptyBlob}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := saveSnapshot(t, repo, repository.Node{Name: "f", Type: repository.NodeFile, Mode: 0o644, Size: 5, Content: tc.content})
			var warnings []string
			sum, err := restorer.Run(ctx, repo, snap, restorer.Options{Target: t.TempDir(),
				Warn: func(p string, err error) { warnings = append(warnings, err.Error()) }})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if sum.Errors != 1 || sum.Files != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "snapshot records 5") {
				t.Fatalf("restore summary %+v, warnings %v; want one size mismatch", sum, warnings)
			}
		})
	}
}
