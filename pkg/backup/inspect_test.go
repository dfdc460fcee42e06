package backup_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/pkg/backup"
)

func TestFind(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []string{"a/x.conf", "a/b/y.conf", "c/z.txt"} {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(filepath.Join(src, "a/x.conf"), old, old); err != nil {
		t.Fatal(err)
	}
	// Two snapshots of the same tree, one of only c/.
	for _, paths := range [][]string{{src}, {src}, {filepath.Join(src, "c")}} {
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: paths}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(res []backup.FindResult) (snaps, matches int) {
		for _, fr := range res {
			snaps++
			matches += len(fr.Matches)
		}
		return
	}
	tests := []struct {
		name           string
		o              backup.FindOptions
		snaps, matches int
	}{
		{"name in every snapshot", backup.FindOptions{Pattern: "*.conf"}, 2, 4},
		{"newer", backup.FindOptions{Pattern: "*.conf", Newer: old.Add(time.Hour)}, 2, 2},
		{"older", backup.FindOptions{Pattern: "*.conf", Older: old.Add(time.Hour)}, 2, 2},
		{"path pattern", backup.FindOptions{Pattern: src + "/a/*/y.conf"}, 2, 2},
		{"in every snapshot once more", backup.FindOptions{Pattern: "z.txt"}, 3, 3},
		{"one snapshot", backup.FindOptions{Pattern: "z.txt", Snapshots: []string{"latest"}}, 1, 1},
		{"nothing", backup.FindOptions{Pattern: "nope"}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := r.Find(ctx, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if s, m := count(res); s != tc.snaps || m != tc.matches {
				t.Fatalf("%d snapshots, %d matches; want %d, %d", s, m, tc.snaps, tc.matches)
			}
		})
	}
	if _, err := r.Find(ctx, backup.FindOptions{Pattern: "["}); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestListAndCat(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("content of f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	first := map[string]backup.ListItem{}
	for _, kind := range backup.ListKinds {
		items, err := r.List(ctx, kind)
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		if kind != "locks" && len(items) == 0 {
			t.Fatalf("list %s: empty", kind)
		}
		if len(items) > 0 {
			first[kind] = items[0]
		}
	}
	if _, err := r.List(ctx, "nope"); err == nil {
		t.Error("list nope accepted")
	}
	for _, tc := range []struct{ kind, ref, want string }{
		{"config", "", `"pack_size"`},
		{"snapshot", "latest", `"tree"`},
		{"key", first["keys"].ID[:8], `"kdf"`},
		{"index", first["index"].ID[:8], `"packs"`},
		{"pack", first["packs"].ID, `"raw_length"`},
	} {
		b, err := r.Cat(ctx, tc.kind, tc.ref)
		if err != nil || !strings.Contains(string(b), tc.want) || !json.Valid(b) {
			t.Errorf("cat %s: %v %q", tc.kind, err, b)
		}
	}
	blobs, _ := r.List(ctx, "blobs")
	var sawData, sawTree bool
	for _, b := range blobs {
		out, err := r.Cat(ctx, "blob", b.ID)
		if err != nil {
			t.Fatalf("cat blob %s: %v", b.ID, err)
		}
		switch b.Type {
		case "data":
			sawData = sawData || string(out) == "content of f"
		case "tree":
			sawTree = sawTree || strings.Contains(string(out), `"nodes"`)
		}
	}
	if !sawData || !sawTree {
		t.Fatalf("cat blob: data %v, tree %v", sawData, sawTree)
	}
	if _, err := r.Cat(ctx, "snapshot", ""); err == nil {
		t.Error("cat snapshot without ID accepted")
	}
}
