package restic

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/hostd/hostd/pkg/backup/importer"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// Caps of what is read from a restic repository, each checked before the
// bytes are read (files by their size, blobs by the index's length).
const (
	maxConfigFile   = 1 << 20
	maxKeyFile      = 64 << 10
	maxKeyFiles     = 32
	maxSnapshotFile = 16 << 20
	maxIndexFile    = 128 << 20
	// maxIndexBlobs bounds the blobs of all index files together: about
	// 100 bytes of memory each, 2 GiB at most, for 80 TiB of restic's
	// average 4 MiB chunks.
	maxIndexBlobs = 20_000_000
	// maxDataBlob is restic's largest chunk (8 MiB) with room for the
	// envelope and zstd's worst-case expansion.
	maxDataBlob = 8<<20 + 64<<10
	// maxTreeBlob bounds a directory listing: about 700,000 entries.
	maxTreeBlob = 256 << 20
	// maxDecompressed bounds what an unpacked file (index, snapshot,
	// config) may expand to.
	maxDecompressed = 256 << 20
)

// Bounds of a node's fields: hostd's (repository/tree.go), so every
// imported tree is one hostd accepts.
const (
	maxNameLen       = 4096
	maxLinkTarget    = 64 << 10
	maxOwnerName     = 4096
	maxXattrs        = 8192
	maxXattrNameLen  = 4096
	maxXattrValueLen = 1 << 20
	maxSnapshotPaths = 1 << 16
	maxSnapshotTags  = 1 << 16
)

// hexID is a 32-byte ID written as 64 hex digits.
type hexID importer.ID

func (id *hexID) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("ID %q: want 64 hex digits", truncate(b))
	}
	_, err := hex.Decode(id[:], b)
	if err != nil {
		return fmt.Errorf("ID %q: %w", truncate(b), err)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// keyFile is a file under keys/.
type keyFile struct {
	KDF  string `json:"kdf"`
	N    int    `json:"N"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
	Data []byte `json:"data"`
}

// decodeKeyFile parses a key file and checks its parameters, before any
// derivation.
func decodeKeyFile(b []byte) (*keyFile, error) {
	var k keyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("damaged: %w", err)
	}
	if k.KDF != "scrypt" {
		return nil, fmt.Errorf("damaged: KDF %q, want scrypt", truncate([]byte(k.KDF)))
	}
	if err := k.params().check(); err != nil {
		return nil, fmt.Errorf("KDF parameters out of range: %w", err)
	}
	// The master key JSON is about 150 bytes; restic's is never larger
	// than a few hundred.
	if len(k.Data) < overhead || len(k.Data) > 4096 {
		return nil, fmt.Errorf("damaged: sealed master key of %d bytes", len(k.Data))
	}
	return &k, nil
}

func (k *keyFile) params() scryptParams { return scryptParams{N: k.N, R: k.R, P: k.P, Salt: k.Salt} }

// masterKey is the JSON sealed in a key file.
type masterKey struct {
	MAC struct {
		K []byte `json:"k"`
		R []byte `json:"r"`
	} `json:"mac"`
	Encrypt []byte `json:"encrypt"`
}

func decodeMasterKey(b []byte) (*key, error) {
	var m masterKey
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	k, err := newKey(m.Encrypt, m.MAC.K, m.MAC.R)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return k, nil
}

// config is restic's config file.
type config struct {
	Version           int    `json:"version"`
	ID                string `json:"id"`
	ChunkerPolynomial string `json:"chunker_polynomial"`
}

func decodeConfig(b []byte) (config, error) {
	var c config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Version != 1 && c.Version != 2 {
		return c, fmt.Errorf("config: repository version %d, this reads 1 and 2", c.Version)
	}
	return c, nil
}

// unpack returns the JSON of a decrypted file (config, index, snapshot):
// as it is in repository version 1 and for JSON in version 2, or zstd
// after a version byte 2. dec is a decoder with a memory cap.
func unpack(dec *zstd.Decoder, plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return nil, errors.New("empty file")
	}
	switch plain[0] {
	case '{', '[':
		return plain, nil
	case 2:
		out, err := dec.DecodeAll(plain[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown file encoding %d", plain[0])
}

// Blob types.
const (
	dataBlob uint8 = iota
	treeBlob
)

// location is where a blob is.
type location struct {
	pack   importer.ID
	offset uint32 // packs are at most 4 GiB (restic's are a few MiB)
	length uint32 // sealed bytes
	raw    uint32 // plaintext bytes; 0: not compressed
}

type indexJSON struct {
	Packs []struct {
		ID    hexID `json:"id"`
		Blobs []struct {
			ID                 hexID  `json:"id"`
			Type               string `json:"type"`
			Offset             int64  `json:"offset"`
			Length             int64  `json:"length"`
			UncompressedLength int64  `json:"uncompressed_length"`
		} `json:"blobs"`
	} `json:"packs"`
}

// blobKey is a blob's type and ID.
type blobKey struct {
	t  uint8
	id importer.ID
}

// decodeIndex parses an index file, adding its blobs to idx unless they
// are there already (a blob is read from the first pack that has it).
// budget is how many more blobs idx may hold.
func decodeIndex(b []byte, idx map[blobKey]location, budget int) (int, error) {
	if len(b) > 0 && b[0] == '[' {
		return 0, errors.New("index of restic before 0.7: run restic's repair index (rebuild-index) first")
	}
	var x indexJSON
	if err := json.Unmarshal(b, &x); err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	n := 0
	for _, p := range x.Packs {
		for _, bl := range p.Blobs {
			var k blobKey
			switch bl.Type {
			case "data":
				k.t = dataBlob
			case "tree":
				k.t = treeBlob
			default:
				return n, fmt.Errorf("index: blob %s: unknown type %q", importer.ID(bl.ID).Short(), truncate([]byte(bl.Type)))
			}
			max := int64(maxDataBlob)
			if k.t == treeBlob {
				max = maxTreeBlob
			}
			switch {
			case bl.Offset < 0 || bl.Offset > math.MaxUint32-bl.Length:
				return n, fmt.Errorf("index: blob %s: offset %d out of range", importer.ID(bl.ID).Short(), bl.Offset)
			case bl.Length < overhead || bl.Length > max:
				return n, fmt.Errorf("index: blob %s: length %d out of range", importer.ID(bl.ID).Short(), bl.Length)
			case bl.UncompressedLength < 0 || bl.UncompressedLength > max:
				return n, fmt.Errorf("index: blob %s: uncompressed length %d out of range", importer.ID(bl.ID).Short(), bl.UncompressedLength)
			}
			k.id = importer.ID(bl.ID)
			if _, ok := idx[k]; ok {
				continue
			}
			if n >= budget {
				return n, fmt.Errorf("index: more than %d blobs", maxIndexBlobs)
			}
			idx[k] = location{pack: importer.ID(p.ID), offset: uint32(bl.Offset), length: uint32(bl.Length), raw: uint32(bl.UncompressedLength)}
			n++
		}
	}
	return n, nil
}

// snapshotJSON is a file under snapshots/.
type snapshotJSON struct {
	Time     time.Time `json:"time"`
	Tree     *hexID    `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Tags     []string  `json:"tags"`
}

func decodeSnapshot(b []byte) (*snapshotJSON, error) {
	var s snapshotJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	switch {
	case s.Tree == nil:
		return nil, errors.New("snapshot: no tree")
	case s.Time.IsZero():
		return nil, errors.New("snapshot: no time")
	case len(s.Paths) > maxSnapshotPaths || len(s.Tags) > maxSnapshotTags:
		return nil, fmt.Errorf("snapshot: %d paths and %d tags", len(s.Paths), len(s.Tags))
	}
	return &s, nil
}

// nodeJSON is one entry of a restic tree (restic's internal/restic/node.go).
type nodeJSON struct {
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	Mode          uint32    `json:"mode"` // Go's fs.FileMode
	ModTime       time.Time `json:"mtime"`
	ChangeTime    time.Time `json:"ctime"`
	UID           uint32    `json:"uid"`
	GID           uint32    `json:"gid"`
	User          string    `json:"user"`
	Group         string    `json:"group"`
	Inode         uint64    `json:"inode"`
	DeviceID      uint64    `json:"device_id"`
	Size          uint64    `json:"size"`
	Links         uint64    `json:"links"`
	LinkTarget    string    `json:"linktarget"`
	LinkTargetRaw []byte    `json:"linktarget_raw"`
	Xattrs        []struct {
		Name  string `json:"name"`
		Value []byte `json:"value"`
	} `json:"extended_attributes"`
	Device  uint64  `json:"device"` // rdev
	Content []hexID `json:"content"`
	Subtree *hexID  `json:"subtree"`
}

type treeJSON struct {
	Nodes []nodeJSON `json:"nodes"`
}

// decodeTree parses a tree blob into importer nodes, checked as
// importer.Source.Tree promises. Sockets are left out (restic restores
// none, nor does hostd).
func decodeTree(b []byte) ([]importer.Node, error) {
	var t treeJSON
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	out := make([]importer.Node, 0, len(t.Nodes))
	for i := range t.Nodes {
		n, err := convertNode(&t.Nodes[i])
		if err != nil {
			return nil, fmt.Errorf("tree: node %d: %w", i, err)
		}
		if n.Type == repository.NodeSocket {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b importer.Node) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("tree: name %q twice", string(out[i].Name))
		}
	}
	return out, nil
}

// convertNode turns restic's node into hostd's terms.
func convertNode(j *nodeJSON) (importer.Node, error) {
	// restic writes names with Go's strconv.Quote, without the quotes,
	// so that names that are not UTF-8 survive JSON.
	if len(j.Name) > 4*maxNameLen {
		return importer.Node{}, fmt.Errorf("name of %d bytes", len(j.Name))
	}
	name, err := strconv.Unquote(`"` + j.Name + `"`)
	if err != nil {
		return importer.Node{}, fmt.Errorf("name %q: not quoted as restic quotes names", truncate([]byte(j.Name)))
	}
	switch {
	case name == "" || name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\x00"):
		return importer.Node{}, fmt.Errorf("invalid name %q", name)
	case len(name) > maxNameLen:
		return importer.Node{}, fmt.Errorf("name of %d bytes, at most %d", len(name), maxNameLen)
	case len(j.User) > maxOwnerName || len(j.Group) > maxOwnerName:
		return importer.Node{}, fmt.Errorf("%q: owner name of %d bytes", name, max(len(j.User), len(j.Group)))
	case len(j.Xattrs) > maxXattrs:
		return importer.Node{}, fmt.Errorf("%q: %d extended attributes, at most %d", name, len(j.Xattrs), maxXattrs)
	}
	n := importer.Node{Node: repository.Node{
		Name: repository.Bytes(name), Mode: unixMode(fs.FileMode(j.Mode)),
		UID: j.UID, GID: j.GID, User: j.User, Group: j.Group,
		MTimeNs: unixNano(j.ModTime), CTimeNs: unixNano(j.ChangeTime),
		Inode: j.Inode, Device: j.DeviceID, Links: j.Links,
	}}
	for _, x := range j.Xattrs {
		if len(x.Name) > maxXattrNameLen || len(x.Value) > maxXattrValueLen || x.Name == "" {
			return importer.Node{}, fmt.Errorf("%q: extended attribute of %d+%d bytes", name, len(x.Name), len(x.Value))
		}
		n.Xattrs = append(n.Xattrs, repository.Xattr{Name: repository.Bytes(x.Name), Value: repository.Bytes(x.Value)})
	}
	if j.Type != "file" && len(j.Content) > 0 || j.Type != "dir" && j.Subtree != nil {
		return importer.Node{}, fmt.Errorf("%q: content or subtree on a %s", name, truncate([]byte(j.Type)))
	}
	switch j.Type {
	case "file":
		n.Type = repository.NodeFile
		n.Size = j.Size
		n.Content = make([]importer.ID, len(j.Content))
		for i, c := range j.Content {
			n.Content[i] = importer.ID(c)
		}
		if n.Size > 0 && len(n.Content) == 0 {
			return importer.Node{}, fmt.Errorf("%q: %d bytes without content", name, n.Size)
		}
	case "dir":
		n.Type = repository.NodeDir
		if j.Subtree == nil {
			return importer.Node{}, fmt.Errorf("%q: directory without subtree", name)
		}
		n.Subtree = importer.ID(*j.Subtree)
	case "symlink":
		n.Type = repository.NodeSymlink
		target := j.LinkTarget
		if j.LinkTargetRaw != nil {
			target = string(j.LinkTargetRaw) // restic 0.17+: exact bytes of a non-UTF-8 target
		}
		if len(target) > maxLinkTarget {
			return importer.Node{}, fmt.Errorf("%q: link target of %d bytes", name, len(target))
		}
		n.LinkTarget = repository.Bytes(target)
	case "dev":
		n.Type, n.Rdev = repository.NodeBlockDev, j.Device
	case "chardev":
		n.Type, n.Rdev = repository.NodeCharDev, j.Device
	case "fifo":
		n.Type = repository.NodeFIFO
	case "socket":
		n.Type = repository.NodeSocket
	default:
		return importer.Node{}, fmt.Errorf("%q: unknown type %q", name, truncate([]byte(j.Type)))
	}
	if !utf8.ValidString(j.User) || !utf8.ValidString(j.Group) {
		n.User, n.Group = "", "" // JSON gave U+FFFD already; hostd stores names as strings
	}
	return n, nil
}

// unixMode turns Go's fs.FileMode into st_mode's permission and set-id
// bits, hostd's layout.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// unixNano is t in nanoseconds since the epoch, clamped to what an int64
// holds (years 1678..2262); the zero time is 0.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
