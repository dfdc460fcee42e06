package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// secretRepo backs up a tree holding a secret file twice (the second
// time with one more file) and returns the repository, the source and
// the secret's path.
func secretRepo(t *testing.T) (string, *backup.Repository, string, string) {
	t.Helper()
	ctx := context.Background()
	dir, r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	secret := filepath.Join(src, "conf", "secret.key")
	for p, content := range map[string]string{
		secret:                              "-----BEGIN PRIVATE KEY----- not for backups",
		filepath.Join(src, "conf", "app"):   "app config",
		filepath.Join(src, "data", "a.txt"): "a",
		filepath.Join(src, "data", "b.txt"): "b",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "data", "c.txt"), []byte("c"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	return dir, r, src, secret
}

// lsPaths lists a snapshot's paths.
func lsPaths(t *testing.T, r *backup.Repository, snap string) []string {
	t.Helper()
	es, err := r.Ls(context.Background(), snap, "/")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

// secretContent returns the content IDs of p in snapshot snap.
func secretContent(t *testing.T, r *backup.Repository, snap, p string) []repository.ID {
	t.Helper()
	ctx := context.Background()
	s, err := r.Internal().FindSnapshot(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Internal().FindNode(ctx, s.Tree, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Content) == 0 {
		t.Fatalf("%s has no content", p)
	}
	return n.Content
}

func TestRewriteRemovesSecret(t *testing.T) {
	ctx := context.Background()
	dir, r, src, secret := secretRepo(t)
	content := secretContent(t, r, "latest", secret)
	before, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A dry run lists what would go and writes nothing.
	res, err := r.Rewrite(ctx, backup.RewriteOptions{Excludes: []string{"**/secret.key"}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[0].Removed) != 1 || res[0].Removed[0].Path != secret || res[0].NewID != "" {
		t.Fatalf("dry run: %+v", res)
	}
	if after, _ := r.Snapshots(ctx); len(after) != 2 {
		t.Fatalf("dry run wrote snapshots: %d", len(after))
	}

	// Without --forget the old snapshots stay, the new ones are tagged.
	res, err = r.Rewrite(ctx, backup.RewriteOptions{Excludes: []string{"**/secret.key"}, Snapshots: []string{before[0].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].NewID == "" || res[0].Forgotten {
		t.Fatalf("rewrite: %+v", res)
	}
	paths := lsPaths(t, r, res[0].NewID)
	if slices.Contains(paths, secret) || !slices.Contains(paths, filepath.Join(src, "conf", "app")) {
		t.Fatalf("rewritten snapshot lists %v", paths)
	}
	all, _ := r.Snapshots(ctx)
	if len(all) != 3 {
		t.Fatalf("want 3 snapshots, got %d", len(all))
	}
	for _, s := range all {
		if s.ID == res[0].NewID && (s.Original != before[0].ID || !slices.Contains(s.Tags, backup.RewriteTag) || s.Hostname != "h") {
			t.Fatalf("rewritten snapshot %+v", s)
		}
	}
	// Unchanged subtrees are reused: data/ has the same tree.
	diff, err := r.Diff(ctx, before[0].ID, res[0].NewID)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) != 1 || diff[0].Op != "-" || diff[0].Path != secret {
		t.Fatalf("diff: %+v", diff)
	}

	// With --forget every snapshot is replaced, then prune drops the data.
	res, err = r.Rewrite(ctx, backup.RewriteOptions{Excludes: []string{"pp:" + secret}, Forget: true})
	if err != nil {
		t.Fatal(err)
	}
	var rewritten int
	for _, x := range res {
		if x.NewID != "" {
			rewritten++
		}
	}
	if rewritten != 2 {
		t.Fatalf("want 2 rewritten (the third has no secret), got %+v", res)
	}
	all, _ = r.Snapshots(ctx)
	if len(all) != 3 {
		t.Fatalf("want 3 snapshots after --forget, got %d", len(all))
	}
	for _, s := range all {
		if slices.Contains(lsPaths(t, r, s.ID), secret) {
			t.Fatalf("snapshot %s still lists the secret", s.ShortID)
		}
	}
	for _, id := range content {
		if !r.Internal().Index().Has(repository.BlobHandle{Type: repository.DataBlob, ID: id}) {
			t.Fatalf("blob %s of the secret is not indexed before prune", id.Short())
		}
	}
	zero := 0.0
	if _, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: &zero}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = open(t, dir)
	for _, id := range content {
		if r.Internal().Index().Has(repository.BlobHandle{Type: repository.DataBlob, ID: id}) {
			t.Fatalf("blob %s of the secret is still indexed after prune", id.Short())
		}
	}
	blobs, err := r.List(ctx, "blobs")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		for _, id := range content {
			if strings.Contains(b.ID, id.String()) {
				t.Fatalf("list blobs names the secret's blob %s", id.Short())
			}
		}
	}
	chk, err := r.Check(ctx, backup.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !chk.OK() {
		t.Fatalf("check after rewrite and prune: %+v", chk)
	}
	// What is left restores.
	target := t.TempDir()
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, secret)); !os.IsNotExist(err) {
		t.Fatalf("restored secret: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(target, src, "data", "c.txt")); err != nil || string(b) != "c" {
		t.Fatalf("restore: %q %v", b, err)
	}
}

func TestRewriteRefuses(t *testing.T) {
	ctx := context.Background()
	_, r, _, _ := secretRepo(t)
	tests := []struct {
		name string
		o    backup.RewriteOptions
		want string
	}{
		{"no pattern", backup.RewriteOptions{}, "nothing to do"},
		{"bad pattern", backup.RewriteOptions{Excludes: []string{"zz:x"}}, "unknown pattern style"},
		{"no such snapshot", backup.RewriteOptions{Excludes: []string{"x"}, Snapshots: []string{"ffffffff"}}, "no such snapshot"},
		{"stdin", backup.RewriteOptions{ExcludeFiles: []string{"-"}}, "not accepted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Rewrite(ctx, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// Nothing matched: no snapshot written.
	res, err := r.Rewrite(ctx, backup.RewriteOptions{Excludes: []string{"*.nothing"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.NewID != "" || len(x.Removed) != 0 {
			t.Fatalf("rewrite without a match: %+v", x)
		}
	}
	if all, _ := r.Snapshots(ctx); len(all) != 2 {
		t.Fatalf("want 2 snapshots, got %d", len(all))
	}
}
