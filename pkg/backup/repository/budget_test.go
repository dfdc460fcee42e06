package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// Tree nodes with fields beyond any a file system stores are refused.
func TestDecodeTreeBounds(t *testing.T) {
	id := ID{1}
	long := func(n int) Bytes { return Bytes(strings.Repeat("x", n)) }
	tests := []struct {
		name string
		node Node
		want string
	}{
		{"longest name", Node{Name: long(maxNameLen), Type: NodeFile}, ""},
		{"name", Node{Name: long(maxNameLen + 1), Type: NodeFile}, "name of 4097 bytes"},
		{"link target", Node{Name: "l", Type: NodeSymlink, LinkTarget: long(maxLinkTarget + 1)}, "link target of"},
		{"owner", Node{Name: "f", Type: NodeFile, User: string(long(maxOwnerName + 1))}, "owner name of"},
		{"xattr count", Node{Name: "f", Type: NodeFile, Xattrs: make([]Xattr, maxXattrs+1)}, "extended attributes, at most"},
		{"xattr value", Node{Name: "f", Type: NodeFile, Xattrs: []Xattr{{Name: "user.a", Value: long(maxXattrValueLen + 1)}}}, "extended attribute of"},
		{"empty xattr name", Node{Name: "f", Type: NodeFile, Xattrs: []Xattr{{Value: "v"}}}, "extended attribute of 0+1"},
		{"directory", Node{Name: "d", Type: NodeDir, Subtree: &id}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeTree(&Tree{Nodes: []Node{tc.node}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = DecodeTree(b)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode: %v, want %q", err, tc.want)
			}
		})
	}
}

// A pack replaced in the storage by a huge file is refused before it is
// read, by whole-pack loads and by header reads.
func TestLoadPackHuge(t *testing.T) {
	ctx := context.Background()
	r, dir := newTestRepo(t)
	defer r.Close()
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("some data")); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs, err := r.List(ctx, backend.Pack)
	if err != nil || len(packs) != 1 {
		t.Fatalf("packs: %v %v", packs, err)
	}
	var id ID
	for id = range packs {
	}
	if _, err := r.LoadPack(ctx, id); err != nil {
		t.Fatalf("load pack: %v", err)
	}
	p := filepath.Join(dir, "data", id.String()[:2], id.String())
	if err := os.Truncate(p, r.PackLimit()+1); err != nil { // sparse
		t.Fatal(err)
	}
	if _, err := r.LoadPack(ctx, id); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("load huge pack: %v, want ErrTooLarge", err)
	}
	if _, err := r.LoadPackHeader(ctx, id, r.PackLimit()+1); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("header of a huge pack: %v", err)
	}
	for _, size := range []int64{-5, 0, 3} {
		if _, err := r.LoadPackHeader(ctx, id, size); err == nil {
			t.Fatalf("header of a pack of %d bytes read", size)
		}
	}
}
