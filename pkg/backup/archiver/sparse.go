package archiver

import (
	"errors"
	"io"

	"golang.org/x/sys/unix"
)

// sparseReader reads a sparse file by its data extents (SEEK_DATA,
// SEEK_HOLE): the bytes of holes are returned as zeros without being
// read, so a 512 MiB file with 1 MiB of data costs 1 MiB of reads. Past
// size (the file grew) it reads on as usual; the caller's second fstat
// flags the change.
type sparseReader struct {
	fd       int
	size     int64 // from fstat when the file was opened
	off      int64
	dataEnd  int64 // data up to here from off
	holeEnd  int64 // zeros up to here from off
	diskRead int64 // bytes read from the file
	plain    bool  // no SEEK_DATA here: read everything
}

func (r *sparseReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.off < r.holeEnd {
		n := int(min(int64(len(p)), r.holeEnd-r.off))
		clear(p[:n])
		r.off += int64(n)
		return n, nil
	}
	if !r.plain && r.off >= r.dataEnd && r.off < r.size {
		if err := r.nextExtent(); err != nil {
			return 0, err
		}
		if r.off < r.holeEnd {
			return r.Read(p)
		}
	}
	if !r.plain && r.off < r.dataEnd {
		p = p[:min(int64(len(p)), r.dataEnd-r.off)]
	}
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		r.off += int64(n)
		r.diskRead += int64(n)
		return n, nil
	}
}

// nextExtent finds what starts at off: a hole (holeEnd past off) or data
// (dataEnd past off).
func (r *sparseReader) nextExtent() error {
	data, err := unix.Seek(r.fd, r.off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		// No data after off: a hole up to the size.
		r.holeEnd = r.size
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP):
		r.plain = true
		return nil
	case err != nil:
		return err
	}
	if data > r.off {
		r.holeEnd = min(data, r.size)
		return nil
	}
	hole, err := unix.Seek(r.fd, r.off, unix.SEEK_HOLE)
	if err != nil {
		return err
	}
	r.dataEnd = hole
	if hole <= r.off {
		// Should not happen; read the rest plainly.
		r.plain = true
	}
	return nil
}
