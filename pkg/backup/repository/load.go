package repository

import (
	"context"
	"fmt"

	"github.com/hostd/hostd/pkg/backup/backend"
)

func (r *Repository) getBuf(n int) *[]byte {
	if b, ok := r.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return b
	}
	b := make([]byte, 0, max(n, 64<<10))
	return &b
}

func (r *Repository) putBuf(b *[]byte) {
	if cap(*b) <= 16<<20 {
		*b = (*b)[:0]
		r.bufs.Put(b)
	}
}

// openSegment decrypts and, if compressed, decompresses a sealed segment
// whose plaintext is segRaw bytes; buf is reused when large enough.
func (r *Repository) openSegment(sealed []byte, compressed bool, segRaw uint32, buf []byte) ([]byte, error) {
	if segRaw > maxSegmentRaw {
		return nil, fmt.Errorf("raw length %d too large", segRaw)
	}
	var p []byte
	var err error
	if compressed {
		scratch := r.getBuf(len(sealed))
		defer r.putBuf(scratch)
		c, err := r.key.Open((*scratch)[:0], sealed)
		if err != nil {
			return nil, err
		}
		*scratch = c
		if cap(buf) < int(segRaw) {
			buf = make([]byte, 0, segRaw)
		}
		p, err = r.dec.DecodeAll(c, buf[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	} else {
		p, err = r.key.Open(buf[:0], sealed)
		if err != nil {
			return nil, err
		}
	}
	if uint32(len(p)) != segRaw {
		return nil, fmt.Errorf("length %d, index says %d", len(p), segRaw)
	}
	return p, nil
}

// blobInSegment returns blob h at loc from its segment's plaintext and
// checks it against its ID.
func (r *Repository) blobInSegment(h BlobHandle, seg []byte, loc Location) ([]byte, error) {
	end := uint64(loc.Inner) + uint64(loc.RawLength)
	if end > uint64(len(seg)) {
		return nil, fmt.Errorf("blob %s: place %d+%d beyond segment of %d bytes", h, loc.Inner, loc.RawLength, len(seg))
	}
	p := seg[loc.Inner:end:end]
	if r.key.ID(p) != h.ID {
		return nil, fmt.Errorf("blob %s: content does not match its ID", h)
	}
	return p, nil
}

// shared reports whether the blob at loc shares its segment with others.
func (loc Location) shared() bool { return loc.Inner != 0 || loc.SegmentRaw != loc.RawLength }

// decodeBlob returns blob h from sealed, the bytes of a segment holding
// only it (see SegmentDecoder for shared ones), in buf when large enough.
func (r *Repository) decodeBlob(h BlobHandle, sealed []byte, loc Location, buf []byte) ([]byte, error) {
	p, err := r.openSegment(sealed, loc.Compressed, loc.RawLength, buf)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return r.blobInSegment(h, p, loc)
}

// LoadBlob reads, decrypts and verifies a blob. buf is reused when large
// enough. The plaintext of shared segments is cached, so reading the
// blobs of one segment one after another decodes it once.
func (r *Repository) LoadBlob(ctx context.Context, h BlobHandle, buf []byte) ([]byte, error) {
	loc, ok := r.idx.Lookup(h)
	if !ok {
		return nil, fmt.Errorf("load blob %s: %w", h, errNoIndex)
	}
	if loc.shared() {
		if seg, ok := r.segs.get(loc.Pack, loc.Offset); ok {
			p, err := r.blobInSegment(h, seg, loc)
			if err != nil {
				return nil, err
			}
			return append(buf[:0], p...), nil
		}
	}
	sealed, err := r.be.Load(ctx, backend.Handle{Type: backend.Pack, Name: loc.Pack.String()}, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("load blob %s: %w", h, err)
	}
	if !loc.shared() {
		return r.decodeBlob(h, sealed, loc, buf)
	}
	seg, err := r.openSegment(sealed, loc.Compressed, loc.SegmentRaw, nil)
	if err != nil {
		return nil, fmt.Errorf("blob %s: segment at %d: %w", h, loc.Offset, err)
	}
	p, err := r.blobInSegment(h, seg, loc)
	if err != nil {
		return nil, err
	}
	r.segs.put(loc.Pack, loc.Offset, seg)
	return append(buf[:0], p...), nil
}

// SegmentDecoder decodes blobs from loaded segments and keeps the last
// shared segment's plaintext, so the blobs of one segment, decoded one
// after another, cost one decryption and decompression. Not safe for
// concurrent use: one per worker.
type SegmentDecoder struct {
	r     *Repository
	pack  ID
	off   uint32
	valid bool
	plain []byte
}

// NewSegmentDecoder returns a decoder for blobs of r.
func (r *Repository) NewSegmentDecoder() *SegmentDecoder { return &SegmentDecoder{r: r} }

// Decode returns blob h at loc from sealed, its segment's bytes. A blob of
// a shared segment is returned as a slice of the decoder's buffer, valid
// until the next call; others land in buf when it is large enough.
func (d *SegmentDecoder) Decode(h BlobHandle, sealed []byte, loc Location, buf []byte) ([]byte, error) {
	if !loc.shared() {
		return d.r.decodeBlob(h, sealed, loc, buf)
	}
	if !d.valid || d.pack != loc.Pack || d.off != loc.Offset {
		d.valid = false
		seg, err := d.r.openSegment(sealed, loc.Compressed, loc.SegmentRaw, d.plain)
		if err != nil {
			return nil, fmt.Errorf("blob %s: segment at %d: %w", h, loc.Offset, err)
		}
		d.plain, d.pack, d.off, d.valid = seg, loc.Pack, loc.Offset, true
	}
	return d.r.blobInSegment(h, d.plain, loc)
}
