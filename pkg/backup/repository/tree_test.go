package repository

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestEncodeTreeMatchesJSON: the hand-written encoder gives exactly the
// bytes of encoding/json, which the format was defined with (tree IDs
// depend on them, so deduplication of unchanged directories too).
func TestEncodeTreeMatchesJSON(t *testing.T) {
	sub := ID{0xab, 0x01}
	tricky := "a\"b\\c\x00\x01\x08\x0c\n\r\t\x1f\x7f<>&é\u2028\u2029\U0001F600 end"
	tests := []struct {
		name string
		tree Tree
	}{
		{name: "nil nodes"},
		{name: "empty nodes", tree: Tree{Nodes: []Node{}}},
		{name: "zero node", tree: Tree{Nodes: []Node{{}}}},
		{name: "every field", tree: Tree{Nodes: []Node{{
			Name: "f", Type: NodeFile, Mode: 0o4755, UID: 1 << 31, GID: 7, User: "root", Group: "wheel",
			Size: 1 << 63, MTimeNs: -1, ATimeNs: 1 << 62, CTimeNs: -(1 << 63), Inode: 1<<64 - 1, Device: 2049,
			Links: 3, Rdev: 259, LinkTarget: "t", Xattrs: []Xattr{{Name: "user.a", Value: "v"}, {Name: "user.b", Value: ""}},
			Content: []ID{{1}, {2, 3}, {0xff}}, Subtree: &sub, Sparse: true,
		}}}},
		{name: "escapes", tree: Tree{Nodes: []Node{{
			Name: Bytes(tricky), Type: tricky, User: tricky, Group: "\xff\xfe", LinkTarget: Bytes(tricky),
			Xattrs: []Xattr{{Name: Bytes(tricky), Value: Bytes(tricky)}},
		}}}},
		{name: "not UTF-8", tree: Tree{Nodes: []Node{
			{Name: "a\xff\nb", Type: NodeSymlink, LinkTarget: "\xfe/x", Xattrs: []Xattr{{Name: "user.\xc0", Value: "\x00\xff"}}},
			{Name: "b", Type: "\xe2\x80", User: "u\xed\xa0\x80"},
		}}},
		{name: "directories", tree: Tree{Nodes: []Node{
			{Name: "d1", Type: NodeDir, Mode: 0o755, Subtree: &sub, Links: 2},
			{Name: "d2", Type: NodeDir, Subtree: &ID{}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTree(&tt.tree)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&tt.tree)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeTree:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

// BenchmarkEncodeTree encodes a directory of 100 files of two chunks.
func BenchmarkEncodeTree(b *testing.B) {
	tree := &Tree{}
	for i := range 100 {
		tree.Nodes = append(tree.Nodes, Node{Name: Bytes("file-" + string(rune('a'+i%26)) + ".go"), Type: NodeFile,
			Mode: 0o644, UID: 1000, GID: 1000, User: "user", Group: "user", Size: 12345, MTimeNs: 1700000000123456789,
			CTimeNs: 1700000000123456789, Inode: 123456 + uint64(i), Device: 2049, Links: 1, Content: []ID{{byte(i)}, {1, byte(i)}}})
	}
	for _, bc := range []struct {
		name string
		enc  func(*Tree) ([]byte, error)
	}{
		{"EncodeTree", EncodeTree},
		{"encoding/json", func(t *Tree) ([]byte, error) { return json.Marshal(t) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.enc(tree); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
