package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
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

// Bounds of a node's fields, well above what Linux stores (names of 255
// bytes, paths of 4096, extended attribute names of 255 bytes and values
// of 64 KiB in a list of 64 KiB), so that no valid tree is refused and
// a decoded tree never holds more than its blob's bytes allow.
const (
	maxNameLen       = 4096
	maxLinkTarget    = 64 << 10
	maxOwnerName     = 4096
	maxXattrs        = 8192
	maxXattrNameLen  = 4096
	maxXattrValueLen = 1 << 20
)

// checkNodeSizes refuses fields of n beyond the bounds above.
func checkNodeSizes(n *Node) error {
	switch {
	case len(n.Name) > maxNameLen:
		return fmt.Errorf("name of %d bytes, at most %d", len(n.Name), maxNameLen)
	case len(n.LinkTarget) > maxLinkTarget:
		return fmt.Errorf("link target of %d bytes, at most %d", len(n.LinkTarget), maxLinkTarget)
	case len(n.User) > maxOwnerName || len(n.Group) > maxOwnerName:
		return fmt.Errorf("owner name of %d bytes, at most %d", max(len(n.User), len(n.Group)), maxOwnerName)
	case len(n.Xattrs) > maxXattrs:
		return fmt.Errorf("%d extended attributes, at most %d", len(n.Xattrs), maxXattrs)
	}
	for _, x := range n.Xattrs {
		if len(x.Name) == 0 || len(x.Name) > maxXattrNameLen || len(x.Value) > maxXattrValueLen {
			return fmt.Errorf("extended attribute of %d+%d bytes, want 1..%d+%d", len(x.Name), len(x.Value), maxXattrNameLen, maxXattrValueLen)
		}
	}
	return nil
}

// DecodeTree parses and validates a tree blob.
func DecodeTree(b []byte) (*Tree, error) {
	t, ok := decodeTreeFast(b)
	if !ok {
		t = new(Tree)
		if err := json.Unmarshal(b, t); err != nil {
			return nil, fmt.Errorf("decode tree: %w", err)
		}
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if err := checkNodeSizes(n); err != nil {
			return nil, fmt.Errorf("decode tree: node %d: %w", i, err)
		}
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
	return t, nil
}

// EncodeTree returns the JSON of t (nodes must be sorted): the bytes
// encoding/json gives for a Tree, written without reflection (trees are
// encoded once per directory of every backup).
func EncodeTree(t *Tree) ([]byte, error) {
	if t.Nodes == nil {
		t.Nodes = []Node{}
	}
	size := 16
	for i := range t.Nodes {
		size += 256 + len(t.Nodes[i].Name) + len(t.Nodes[i].Content)*(2*len(ID{})+3)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"nodes":[`...)
	for i := range t.Nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNode(b, &t.Nodes[i])
	}
	return append(b, "]}"...), nil
}

// appendNode appends n as encoding/json does: fields in struct order,
// omitempty ones left out when zero.
func appendNode(b []byte, n *Node) []byte {
	b = append(b, `{"name":`...)
	b = appendBytes(b, n.Name)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, n.Type)
	b = appendUint(b, `,"mode":`, uint64(n.Mode))
	b = appendUint(b, `,"uid":`, uint64(n.UID))
	b = appendUint(b, `,"gid":`, uint64(n.GID))
	if n.User != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, n.User)
	}
	if n.Group != "" {
		b = append(b, `,"group":`...)
		b = appendJSONString(b, n.Group)
	}
	b = appendUintField(b, `,"size":`, n.Size)
	b = append(b, `,"mtime_ns":`...)
	b = strconv.AppendInt(b, n.MTimeNs, 10)
	if n.ATimeNs != 0 {
		b = append(b, `,"atime_ns":`...)
		b = strconv.AppendInt(b, n.ATimeNs, 10)
	}
	if n.CTimeNs != 0 {
		b = append(b, `,"ctime_ns":`...)
		b = strconv.AppendInt(b, n.CTimeNs, 10)
	}
	b = appendUintField(b, `,"inode":`, n.Inode)
	b = appendUintField(b, `,"device":`, n.Device)
	b = appendUintField(b, `,"links":`, n.Links)
	b = appendUintField(b, `,"rdev":`, n.Rdev)
	if n.LinkTarget != "" {
		b = append(b, `,"link_target":`...)
		b = appendBytes(b, n.LinkTarget)
	}
	if len(n.Xattrs) > 0 {
		b = append(b, `,"xattrs":[`...)
		for i, x := range n.Xattrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendBytes(b, x.Name)
			b = append(b, `,"value":`...)
			b = appendBytes(b, x.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(n.Content) > 0 {
		b = append(b, `,"content":[`...)
		for i := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendID(b, &n.Content[i])
		}
		b = append(b, ']')
	}
	if n.Subtree != nil {
		b = append(b, `,"subtree":`...)
		b = appendID(b, n.Subtree)
	}
	if n.Sparse {
		b = append(b, `,"sparse":true`...)
	}
	return append(b, '}')
}

// appendUint appends key and v.
func appendUint(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(append(b, key...), v, 10)
}

// appendUintField appends key and v unless v is 0 (omitempty).
func appendUintField(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendUint(b, key, v)
}

func appendID(b []byte, id *ID) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, id[:])
	return append(b, '"')
}

// appendBytes appends what Bytes.MarshalJSON returns.
func appendBytes(b []byte, v Bytes) []byte {
	if utf8.ValidString(string(v)) {
		return appendJSONString(b, string(v))
	}
	b = append(b, `{"b64":"`...)
	b = base64.StdEncoding.AppendEncode(b, []byte(v))
	return append(b, `"}`...)
}

// appendJSONString appends s quoted as encoding/json does by default:
// HTML-safe (<, > and & escaped), invalid UTF-8 as U+FFFD, and U+2028
// and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// SaveTree encodes and stores a tree blob.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	b, err := EncodeTree(t)
	if err != nil {
		return ID{}, err
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b)
	return id, err
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, BlobHandle{Type: TreeBlob, ID: id}, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}
