package repository

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// Trees as EncodeTree writes them take the fast path and decode to what
// encoding/json gives; names that need escapes or base64 take
// encoding/json's path and decode the same.
func TestDecodeTreeFast(t *testing.T) {
	id := ID{7, 1}
	var big Tree
	for i := range 300 {
		big.Nodes = append(big.Nodes, Node{Name: Bytes(fmt.Sprintf("file-%03d.go", i)), Type: NodeFile, Mode: 0o644, UID: 1000, GID: 100,
			User: "user", Group: "users", Size: uint64(i) * 4096, MTimeNs: 1700000000123456789 + int64(i), Inode: uint64(i) + 1<<40,
			Device: 2049, Links: 1, Content: []ID{{byte(i)}, {byte(i), 1}}})
	}
	tests := []struct {
		name string
		tree Tree
		fast bool
	}{
		{"empty", Tree{}, true},
		{"plain", big, true},
		{"every field", Tree{Nodes: []Node{
			{Name: "a", Type: NodeFile, Mode: 0o4755, Size: 1, MTimeNs: -5, ATimeNs: 7, CTimeNs: 9, Inode: 3, Device: 4, Links: 2, Rdev: 0,
				Xattrs: []Xattr{{Name: "user.é", Value: "vàl"}}, Content: []ID{{1}}, Sparse: true},
			{Name: "d", Type: NodeDir, Mode: 0o755, Subtree: &id},
			{Name: "l", Type: NodeSymlink, LinkTarget: "ü/../x"},
		}}, true},
		{"escaped name", Tree{Nodes: []Node{{Name: `a"b<c>&`, Type: NodeFile}}}, false},
		{"name not utf-8", Tree{Nodes: []Node{{Name: "a\xffb", Type: NodeFile}}}, false},
		{"value not utf-8", Tree{Nodes: []Node{{Name: "a", Type: NodeFile, Xattrs: []Xattr{{Name: "user.x", Value: "\x00\xfe"}}}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeTree(&tc.tree)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := decodeTreeFast(b)
			if ok != tc.fast {
				t.Fatalf("fast path taken: %v, want %v", ok, tc.fast)
			}
			var want Tree
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if ok && !reflect.DeepEqual(fast, &want) {
				t.Fatalf("fast decoder:\n%+v\nencoding/json:\n%+v", fast, &want)
			}
			got, err := DecodeTree(b)
			if err != nil || !reflect.DeepEqual(got, &want) {
				t.Fatalf("DecodeTree: %v\n%+v\nwant %+v", err, got, &want)
			}
		})
	}
}

func BenchmarkDecodeTree(b *testing.B) {
	var tr Tree
	for i := range 100 {
		tr.Nodes = append(tr.Nodes, Node{Name: Bytes(fmt.Sprintf("file-%03d.go", i)), Type: NodeFile, Mode: 0o644, UID: 1000, GID: 100,
			User: "user", Group: "users", Size: uint64(i) * 4096, MTimeNs: 1700000000123456789, Inode: uint64(i), Device: 2049, Links: 1, Content: []ID{{byte(i)}}})
	}
	enc, _ := EncodeTree(&tr)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeTree(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var t Tree
			if err := json.Unmarshal(enc, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
}
