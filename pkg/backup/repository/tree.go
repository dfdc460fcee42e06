package repository

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Node types.
const (
	NodeFile     = "file"
	NodeDir      = "dir"
	NodeSymlink  = "symlink"
	NodeFIFO     = "fifo"
	NodeCharDev  = "chardev"
	NodeBlockDev = "blockdev"
	NodeSocket   = "socket"
)

// Bytes is a string of arbitrary bytes (file names, link targets, xattr
// values). It is a JSON string when valid UTF-8 and {"b64": "..."}
// otherwise, so names that are not UTF-8 survive exactly.
type Bytes string

// MarshalJSON implements json.Marshaler.
func (b Bytes) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(b)) {
		return json.Marshal(string(b))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(b))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = Bytes(s)
		return nil
	}
	var o struct {
		B64 *string `json:"b64"`
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return err
	}
	if o.B64 == nil {
		return errors.New("bytes: want a string or {\"b64\": ...}")
	}
	raw, err := base64.StdEncoding.DecodeString(*o.B64)
	if err != nil {
		return fmt.Errorf("bytes: %w", err)
	}
	*b = Bytes(raw)
	return nil
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  Bytes `json:"name"`
	Value Bytes `json:"value"`
}

// Node is one directory entry of a snapshot.
type Node struct {
	Name       Bytes   `json:"name"`
	Type       string  `json:"type"`
	Mode       uint32  `json:"mode"` // permission, setuid/setgid/sticky bits (syscall layout)
	UID        uint32  `json:"uid"`
	GID        uint32  `json:"gid"`
	User       string  `json:"user,omitempty"`
	Group      string  `json:"group,omitempty"`
	Size       uint64  `json:"size,omitempty"`
	MTimeNs    int64   `json:"mtime_ns"`
	ATimeNs    int64   `json:"atime_ns,omitempty"`
	CTimeNs    int64   `json:"ctime_ns,omitempty"`
	Inode      uint64  `json:"inode,omitempty"`
	Device     uint64  `json:"device,omitempty"`
	Links      uint64  `json:"links,omitempty"`
	Rdev       uint64  `json:"rdev,omitempty"`
	LinkTarget Bytes   `json:"link_target,omitempty"`
	Xattrs     []Xattr `json:"xattrs,omitempty"`
	Content    []ID    `json:"content,omitempty"`
	Subtree    *ID     `json:"subtree,omitempty"`
	Sparse     bool    `json:"sparse,omitempty"`
}

// Tree is the content of a directory: its entries sorted by name.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Sort orders the nodes by name.
func (t *Tree) Sort() {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return string(t.Nodes[i].Name) >= name })
	if i < len(t.Nodes) && string(t.Nodes[i].Name) == name {
		return &t.Nodes[i]
	}
	return nil
}

func validNodeType(t string) bool {
	switch t {
	case NodeFile, NodeDir, NodeSymlink, NodeFIFO, NodeCharDev, NodeBlockDev, NodeSocket:
		return true
	}
	return false
}

// DecodeTree parses and validates a tree blob.
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case !validNodeType(n.Type):
			return nil, fmt.Errorf("decode tree: node %d: unknown type %q", i, n.Type)
		case n.Name == "" || n.Name == "." || n.Name == ".." || bytes.ContainsAny([]byte(n.Name), "/\x00"):
			return nil, fmt.Errorf("decode tree: node %d: invalid name %q", i, string(n.Name))
		case n.Type == NodeDir && n.Subtree == nil:
			return nil, fmt.Errorf("decode tree: directory %q without subtree", string(n.Name))
		case i > 0 && t.Nodes[i-1].Name >= n.Name:
			return nil, fmt.Errorf("decode tree: node %q out of order or duplicated", string(n.Name))
		}
	}
	return &t, nil
}

// EncodeTree returns the JSON of t (nodes must be sorted).
func EncodeTree(t *Tree) ([]byte, error) {
	if t.Nodes == nil {
		t.Nodes = []Node{}
	}
	return json.Marshal(t)
}
