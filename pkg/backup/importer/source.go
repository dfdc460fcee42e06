package importer

import (
	"context"
	"encoding/hex"
	"io"
	"time"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// ID names a tree or a piece of content in a source repository: restic's
// blob IDs (SHA-256 of the plaintext), and borg's chunk IDs, are 32 bytes.
type ID [32]byte

// String is the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// Snapshot is one snapshot of a source repository.
type Snapshot struct {
	ID       string // the source's name for it, printed in reports
	Time     time.Time
	Hostname string
	Username string
	Paths    []string
	Tags     []string
	Tree     ID // root directory, for Source.Tree
}

// Node is one directory entry of a source snapshot. Its metadata is
// already in hostd's terms (repository.Node without Content and
// Subtree); where the file's bytes and the directory's entries are is
// said by Content and Subtree, which only the source interprets.
type Node struct {
	repository.Node
	// Subtree names a directory's entries (Source.Tree).
	Subtree ID
	// Content lists the pieces of a regular file's bytes, in order.
	// Equal lists mean equal bytes, so the importer converts a file's
	// content once per run however many snapshots and hard links name it.
	Content []ID
}

// Source is a repository of another backup program that snapshots are
// imported from. restic's is one (package importer/restic); borg's
// archives fit the same shape (a source may make up directory IDs from
// its items, as long as equal IDs mean equal directories).
//
// A Source is used by one import at a time, but Tree and Open are called
// from several goroutines at once.
type Source interface {
	// Location is the repository's name for messages (restic:/srv/repo).
	Location() string
	// Snapshots lists every snapshot, oldest first. Snapshots that cannot
	// be read are returned in bad, by ID, and do not fail the listing.
	Snapshots(ctx context.Context) (snaps []Snapshot, bad map[string]error, err error)
	// Tree returns the entries of directory id sorted by name, each
	// checked: valid name (no "/", NUL, "." or ".."), no duplicate, sizes
	// within hostd's bounds. IDs are content hashes (or unique): a
	// directory named twice is converted once.
	Tree(ctx context.Context, id ID) ([]Node, error)
	// Open returns the bytes of a regular file: exactly n.Size bytes,
	// each piece authenticated before it is returned, or an error.
	Open(ctx context.Context, n *Node) (io.ReadCloser, error)
	// Close releases the repository.
	Close() error
}
