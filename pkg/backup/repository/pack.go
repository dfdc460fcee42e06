package repository

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Pack layout: segment_1 .. segment_n, encrypted header, uint32le header
// length. A segment is Seal(payload) or Seal(zstd(payload)), where payload
// is one blob or, from repository version 3 on, several small blobs one
// after another (compressed together, which suits small files: zstd sees
// more context). Header format 1 (versions 1 and 2) has one entry per
// blob, each its own segment; header format 2 (version 3) lists segments
// with their blobs.
const (
	packMagicV1    = "HBPK\x01"
	packMagicV2    = "HBPK\x02"
	packEntrySize  = 1 + 1 + 4 + 4 + crypto.IDSize // format 1 entry
	segHeaderSize  = 1 + 4 + 2                     // format 2: flags, sealed length, blob count
	segBlobSize    = 1 + 4 + crypto.IDSize         // format 2: type, raw length, id
	maxHeaderSize  = 16 << 20
	flagCompressed = 1
	// packSlack is the room a pack buffer has past the pack size for the
	// sealed header. maxPackBlobs is how many blobs' entries fit in it
	// alone; packs no longer close at that count but when the next
	// segment or the header would not fit the buffer (save.go), so a pack
	// of many small blobs fills to its size.
	packSlack    = 64 << 10
	maxPackBlobs = (packSlack - len(packMagicV2) - crypto.Overhead - 4) / (segHeaderSize + segBlobSize)
	// maxSegmentBlobs bounds the blobs of one segment (a uint16 count).
	maxSegmentBlobs = 1<<16 - 1
	// maxSegmentRaw bounds the plaintext of one segment.
	maxSegmentRaw = 1 << 28
	// maxSealedSegment bounds a segment as stored: its plaintext (or a
	// compressed form, kept only when smaller) sealed, with room to spare.
	maxSealedSegment = maxSegmentRaw + 1<<20
)

// PackBlob describes one blob in a pack.
type PackBlob struct {
	BlobHandle
	Offset     uint32 // position of the blob's sealed segment in the pack
	Length     uint32 // length of the sealed segment
	RawLength  uint32 // length of the blob's plaintext
	Compressed bool   // the segment is compressed
	Inner      uint32 // position of the blob in the segment's plaintext
	SegmentRaw uint32 // length of the segment's plaintext
}

// packBuilder accumulates sealed segments of one pack in memory.
type packBuilder struct {
	buf     []byte
	blobs   []PackBlob
	writers sync.WaitGroup // segments reserved but not yet sealed into buf
}

// segBlob is a blob of a segment being built.
type segBlob struct {
	h      BlobHandle
	rawLen int
}

// reserve appends room for a sealed segment of sealedLen bytes holding
// blobs (in payload order) and returns it; the caller (holding the
// repository lock) seals into it after releasing the lock and then calls
// writers.Done. The buffer never grows past its capacity here
// (newPackBuilder sizes it), so the returned slice stays valid.
func (p *packBuilder) reserve(blobs []segBlob, sealedLen, segRaw int, compressed bool) []byte {
	off := len(p.buf)
	if off+sealedLen > cap(p.buf) {
		panic("pack buffer too small") // newPackBuilder and the close rule prevent this
	}
	inner := 0
	for _, b := range blobs {
		p.blobs = append(p.blobs, PackBlob{BlobHandle: b.h, Offset: uint32(off), Length: uint32(sealedLen),
			RawLength: uint32(b.rawLen), Compressed: compressed, Inner: uint32(inner), SegmentRaw: uint32(segRaw)})
		inner += b.rawLen
	}
	p.buf = p.buf[:off+sealedLen]
	p.writers.Add(1)
	return p.buf[off : off+sealedLen : off+sealedLen]
}

// finish appends the encrypted header (format 2 when grouped, else
// format 1) and returns the pack bytes and ID.
func (p *packBuilder) finish(k *crypto.Key, grouped bool) ([]byte, ID) {
	var hdr []byte
	if grouped {
		hdr = encodePackHeaderV2(p.blobs)
	} else {
		hdr = encodePackHeaderV1(p.blobs)
	}
	start := len(p.buf)
	p.buf = k.Seal(p.buf, hdr)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(p.buf)-start))
	return p.buf, fileID(p.buf)
}

func encodePackHeaderV1(blobs []PackBlob) []byte {
	b := make([]byte, 0, len(packMagicV1)+len(blobs)*packEntrySize)
	b = append(b, packMagicV1...)
	for _, e := range blobs {
		var flags byte
		if e.Compressed {
			flags |= flagCompressed
		}
		b = append(b, byte(e.Type), flags)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLength)
		b = append(b, e.ID[:]...)
	}
	return b
}

// encodePackHeaderV2 writes blobs (in file order; the blobs of a segment
// share its Offset) as segments.
func encodePackHeaderV2(blobs []PackBlob) []byte {
	b := make([]byte, 0, len(packMagicV2)+len(blobs)*(segHeaderSize+segBlobSize))
	b = append(b, packMagicV2...)
	for i := 0; i < len(blobs); {
		j := i + 1
		for j < len(blobs) && blobs[j].Offset == blobs[i].Offset {
			j++
		}
		var flags byte
		if blobs[i].Compressed {
			flags |= flagCompressed
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint32(b, blobs[i].Length)
		b = binary.LittleEndian.AppendUint16(b, uint16(j-i))
		for _, e := range blobs[i:j] {
			b = append(b, byte(e.Type))
			b = binary.LittleEndian.AppendUint32(b, e.RawLength)
			b = append(b, e.ID[:]...)
		}
		i = j
	}
	return b
}

// DecodePackHeader parses a decrypted pack header (either format).
// dataEnd bounds the segment offsets (the header itself sits after the
// last segment).
func DecodePackHeader(hdr []byte, dataEnd int64) ([]PackBlob, error) {
	switch {
	case len(hdr) >= len(packMagicV1) && string(hdr[:len(packMagicV1)]) == packMagicV1:
		return decodePackHeaderV1(hdr[len(packMagicV1):], dataEnd)
	case len(hdr) >= len(packMagicV2) && string(hdr[:len(packMagicV2)]) == packMagicV2:
		return decodePackHeaderV2(hdr[len(packMagicV2):], dataEnd)
	}
	return nil, errors.New("pack header: bad magic")
}

func decodePackHeaderV1(hdr []byte, dataEnd int64) ([]PackBlob, error) {
	if len(hdr)%packEntrySize != 0 {
		return nil, fmt.Errorf("pack header: length %d is not a multiple of %d", len(hdr), packEntrySize)
	}
	// Every entry covers at least MinOverhead bytes of the data.
	blobs := make([]PackBlob, 0, min(int64(len(hdr)/packEntrySize), max(dataEnd, 0)/crypto.MinOverhead))
	var off int64
	for len(hdr) > 0 {
		e := PackBlob{
			BlobHandle: BlobHandle{Type: BlobType(hdr[0])},
			Offset:     uint32(off),
			Length:     binary.LittleEndian.Uint32(hdr[2:]),
			RawLength:  binary.LittleEndian.Uint32(hdr[6:]),
			Compressed: hdr[1]&flagCompressed != 0,
		}
		e.SegmentRaw = e.RawLength
		copy(e.ID[:], hdr[10:])
		if e.Type > TreeBlob || hdr[1]&^flagCompressed != 0 {
			return nil, fmt.Errorf("pack header: entry %d: bad type %d or flags %#x", len(blobs), hdr[0], hdr[1])
		}
		if e.Length < crypto.MinOverhead || e.Length > maxSealedSegment {
			return nil, fmt.Errorf("pack header: entry %d: length %d out of range", len(blobs), e.Length)
		}
		off += int64(e.Length)
		if off > dataEnd {
			return nil, fmt.Errorf("pack header: entry %d ends at %d beyond blob data end %d", len(blobs), off, dataEnd)
		}
		blobs = append(blobs, e)
		hdr = hdr[packEntrySize:]
	}
	if off != dataEnd {
		return nil, fmt.Errorf("pack header: blobs cover %d bytes, data is %d", off, dataEnd)
	}
	return blobs, nil
}

func decodePackHeaderV2(hdr []byte, dataEnd int64) ([]PackBlob, error) {
	var blobs []PackBlob
	var off int64
	for seg := 0; len(hdr) > 0; seg++ {
		if len(hdr) < segHeaderSize {
			return nil, fmt.Errorf("pack header: segment %d: truncated", seg)
		}
		flags := hdr[0]
		length := binary.LittleEndian.Uint32(hdr[1:])
		count := int(binary.LittleEndian.Uint16(hdr[5:]))
		hdr = hdr[segHeaderSize:]
		if flags&^flagCompressed != 0 {
			return nil, fmt.Errorf("pack header: segment %d: bad flags %#x", seg, flags)
		}
		if length < crypto.MinOverhead || length > maxSealedSegment {
			return nil, fmt.Errorf("pack header: segment %d: length %d out of range", seg, length)
		}
		if count == 0 || len(hdr) < count*segBlobSize {
			return nil, fmt.Errorf("pack header: segment %d: %d blobs do not fit the header", seg, count)
		}
		if off+int64(length) > dataEnd {
			return nil, fmt.Errorf("pack header: segment %d ends at %d beyond blob data end %d", seg, off+int64(length), dataEnd)
		}
		first := len(blobs)
		var inner int64
		for i := range count {
			e := PackBlob{
				BlobHandle: BlobHandle{Type: BlobType(hdr[0])},
				Offset:     uint32(off),
				Length:     length,
				RawLength:  binary.LittleEndian.Uint32(hdr[1:]),
				Compressed: flags&flagCompressed != 0,
				Inner:      uint32(inner),
			}
			copy(e.ID[:], hdr[5:])
			if e.Type > TreeBlob {
				return nil, fmt.Errorf("pack header: segment %d blob %d: bad type %d", seg, i, hdr[0])
			}
			inner += int64(e.RawLength)
			if inner > maxSegmentRaw {
				return nil, fmt.Errorf("pack header: segment %d: plaintext over %d bytes", seg, maxSegmentRaw)
			}
			blobs = append(blobs, e)
			hdr = hdr[segBlobSize:]
		}
		for i := first; i < len(blobs); i++ {
			blobs[i].SegmentRaw = uint32(inner)
		}
		off += int64(length)
	}
	if off != dataEnd {
		return nil, fmt.Errorf("pack header: segments cover %d bytes, data is %d", off, dataEnd)
	}
	return blobs, nil
}

// parsePackTrailer reads the header length from the last 4 bytes of a
// pack of size packSize and returns the header's offset and length.
func parsePackTrailer(tail []byte, packSize int64) (int64, int, error) {
	if len(tail) < 4 || packSize < 4 {
		return 0, 0, errors.New("pack too short")
	}
	hl := int64(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if hl < crypto.MinOverhead+int64(len(packMagicV1)) || hl > maxHeaderSize || hl > packSize-4 {
		return 0, 0, fmt.Errorf("pack header length %d invalid for pack of %d bytes", hl, packSize)
	}
	return packSize - 4 - hl, int(hl), nil
}

// Location returns where b is, in pack.
func (b PackBlob) Location(pack ID) Location {
	return Location{Pack: pack, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Compressed: b.Compressed, Inner: b.Inner, SegmentRaw: b.SegmentRaw}
}

// PackLimit returns the most bytes a pack of this repository can hold:
// its pack size, or one segment when a single segment is larger, plus the
// header. LoadPack refuses larger files.
func (r *Repository) PackLimit() int64 {
	return int64(max(r.cfg.PackSize, maxSealedSegment)) + maxHeaderSize + 4
}

// LoadPack reads the whole pack id (for check, prune and repair),
// refusing before reading one larger than PackLimit: the storage may
// hold a file of any size under a pack's name.
func (r *Repository) LoadPack(ctx context.Context, id ID) ([]byte, error) {
	return backend.LoadFile(ctx, r.be, backend.Handle{Type: backend.Pack, Name: id.String()}, r.PackLimit())
}

// LoadPackHeader reads and decrypts the header of pack id of size bytes.
func (r *Repository) LoadPackHeader(ctx context.Context, id ID, size int64) ([]PackBlob, error) {
	h := backend.Handle{Type: backend.Pack, Name: id.String()}
	if size < 4 || size > r.PackLimit() {
		return nil, fmt.Errorf("pack %s: size %d out of range 4..%d", id.Short(), size, r.PackLimit())
	}
	tailLen := min(size, 64<<10)
	tail, err := r.be.Load(ctx, h, size-tailLen, int(tailLen))
	if err != nil {
		return nil, err
	}
	return r.decodePackTail(tail, size)
}

func (r *Repository) decodePackTail(tail []byte, size int64) ([]PackBlob, error) {
	off, hl, err := parsePackTrailer(tail, size)
	if err != nil {
		return nil, err
	}
	start := int64(len(tail)) - 4 - int64(hl)
	if start < 0 {
		return nil, fmt.Errorf("pack header of %d bytes beyond tail read", hl)
	}
	hdr, err := r.key.Open(nil, tail[start:len(tail)-4])
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	return DecodePackHeader(hdr, off)
}

// ErrPackContent says a pack's content does not hash to its name.
var ErrPackContent = errors.New("content does not match its name")

// DecodePack verifies a whole pack file: its name, header and every blob.
// It returns the header's blobs and, per blob, an error or nil. A pack
// whose content does not match its name is still decoded when its header
// is intact, so that the damage is narrowed to the blobs it hit: the
// error is then ErrPackContent, returned with the blobs and their errors.
func (r *Repository) DecodePack(id ID, data []byte) ([]PackBlob, []error, error) {
	var nameErr error
	if fileID(data) != id {
		nameErr = ErrPackContent
	}
	size := int64(len(data))
	if size < 4 {
		return nil, nil, errors.Join(nameErr, errors.New("pack too short"))
	}
	blobs, err := r.decodePackTail(data, size)
	if err != nil {
		if nameErr != nil {
			return nil, nil, fmt.Errorf("%w; header: %w", nameErr, err)
		}
		return nil, nil, err
	}
	errs := make([]error, len(blobs))
	d := r.NewSegmentDecoder()
	for i, b := range blobs {
		_, errs[i] = d.Decode(b.BlobHandle, data[b.Offset:b.Offset+b.Length], b.Location(id), nil)
	}
	return blobs, errs, nameErr
}
