package repository

import (
	"fmt"

	"github.com/hostd/hostd/pkg/backup/crypto"
)

// ID is a blob or file ID.
type ID = crypto.ID

// BlobType tells file content from directory trees.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 0
	TreeBlob BlobType = 1
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// BlobHandle names a blob.
type BlobHandle struct {
	Type BlobType
	ID   ID
}

func (h BlobHandle) String() string { return h.Type.String() + "/" + h.ID.String() }
