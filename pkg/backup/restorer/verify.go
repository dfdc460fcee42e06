package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// verify reads back every file the restore wrote (hard links by each
// name) and checks it against the snapshot: each chunk, cut at the
// lengths the index gives, must hash to the content ID the snapshot
// names, and the file must end there. A file that differs is warned
// about and counted as an error; files already warned about (left out)
// are not read.
func (r *restorer) verify(ctx context.Context, pl *plan) error {
	var buf []byte
	check := func(path string, n *repository.Node) error {
		if _, failed := r.failed.Load(path); failed {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := r.verifyFile(path, n, &buf)
		if err != nil {
			r.warn(path, fmt.Errorf("verify: %w", err))
			return nil
		}
		r.sum.Verified++
		return nil
	}
	for _, f := range pl.files {
		if err := check(f.path, f.node); err != nil {
			return err
		}
	}
	for _, l := range pl.links {
		if err := check(l.path, l.node); err != nil {
			return err
		}
	}
	return nil
}

func (r *restorer) verifyFile(path string, n *repository.Node, buf *[]byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for i, id := range n.Content {
		loc, ok := r.repo.Index().Lookup(repository.BlobHandle{Type: repository.DataBlob, ID: id})
		if !ok {
			return fmt.Errorf("chunk %d (%s) is not in the index", i, id.Short())
		}
		size := int(loc.RawLength)
		if cap(*buf) < size {
			*buf = make([]byte, size)
		}
		b := (*buf)[:size]
		if _, err := io.ReadFull(f, b); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("file ends in chunk %d, at or before byte %d of %d", i, off+int64(size), n.Size)
			}
			return err
		}
		if r.repo.Key().ID(b) != id {
			return fmt.Errorf("content differs from the snapshot in bytes %d..%d", off, off+int64(size))
		}
		off += int64(size)
	}
	var one [1]byte
	if m, _ := f.Read(one[:]); m > 0 {
		return fmt.Errorf("file is longer than the snapshot's %d bytes", off)
	}
	if uint64(off) != n.Size {
		return fmt.Errorf("snapshot's chunks hold %d bytes, its size is %d", off, n.Size)
	}
	return nil
}
