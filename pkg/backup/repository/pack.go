package repository

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Pack layout: blob_1 .. blob_n, encrypted header, uint32le header length.
// Each blob is Seal(plaintext or zstd(plaintext)); the header plaintext is
// packMagic followed by one fixed-size entry per blob, in file order.
const (
	packMagic      = "HBPK\x01"
	packEntrySize  = 1 + 1 + 4 + 4 + crypto.IDSize
	maxHeaderSize  = 16 << 20
	flagCompressed = 1
	// packSlack is the room a pack buffer has past the pack size for the
	// sealed header; maxPackBlobs keeps the header within it, so a pack
	// of many small blobs is never copied to a larger buffer.
	packSlack    = 64 << 10
	maxPackBlobs = (packSlack - len(packMagic) - crypto.Overhead - 4) / packEntrySize
)

// PackBlob describes one blob in a pack.
type PackBlob struct {
	BlobHandle
	Offset     uint32 // position of the sealed blob in the pack
	Length     uint32 // length of the sealed blob
	RawLength  uint32 // length of the plaintext
	Compressed bool
}

// packBuilder accumulates sealed blobs of one pack in memory.
type packBuilder struct {
	buf     []byte
	blobs   []PackBlob
	writers sync.WaitGroup // blobs reserved but not yet sealed into buf
}

// reserve appends room for a sealed blob of sealedLen bytes and returns
// it; the caller (holding the repository lock) seals into it after
// releasing the lock and then calls writers.Done. The buffer never
// grows past its capacity here (newPackBuilder sizes it), so the
// returned slice stays valid.
func (p *packBuilder) reserve(h BlobHandle, sealedLen, rawLen int, compressed bool) []byte {
	off := len(p.buf)
	if off+sealedLen > cap(p.buf) {
		panic("pack buffer too small") // newPackBuilder and the close rule prevent this
	}
	p.blobs = append(p.blobs, PackBlob{BlobHandle: h, Offset: uint32(off), Length: uint32(sealedLen), RawLength: uint32(rawLen), Compressed: compressed})
	p.buf = p.buf[:off+sealedLen]
	p.writers.Add(1)
	return p.buf[off : off+sealedLen : off+sealedLen]
}

// finish appends the encrypted header and returns the pack bytes and ID.
func (p *packBuilder) finish(k *crypto.Key) ([]byte, ID) {
	hdr := encodePackHeader(p.blobs)
	start := len(p.buf)
	p.buf = k.Seal(p.buf, hdr)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(p.buf)-start))
	return p.buf, fileID(p.buf)
}

func encodePackHeader(blobs []PackBlob) []byte {
	b := make([]byte, 0, len(packMagic)+len(blobs)*packEntrySize)
	b = append(b, packMagic...)
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

// DecodePackHeader parses a decrypted pack header. packSize bounds the
// blob offsets (the header itself sits after the last blob).
func DecodePackHeader(hdr []byte, dataEnd int64) ([]PackBlob, error) {
	if len(hdr) < len(packMagic) || string(hdr[:len(packMagic)]) != packMagic {
		return nil, errors.New("pack header: bad magic")
	}
	hdr = hdr[len(packMagic):]
	if len(hdr)%packEntrySize != 0 {
		return nil, fmt.Errorf("pack header: length %d is not a multiple of %d", len(hdr), packEntrySize)
	}
	blobs := make([]PackBlob, 0, len(hdr)/packEntrySize)
	var off int64
	for len(hdr) > 0 {
		e := PackBlob{
			BlobHandle: BlobHandle{Type: BlobType(hdr[0])},
			Offset:     uint32(off),
			Length:     binary.LittleEndian.Uint32(hdr[2:]),
			RawLength:  binary.LittleEndian.Uint32(hdr[6:]),
			Compressed: hdr[1]&flagCompressed != 0,
		}
		copy(e.ID[:], hdr[10:])
		if e.Type > TreeBlob || hdr[1]&^flagCompressed != 0 {
			return nil, fmt.Errorf("pack header: entry %d: bad type %d or flags %#x", len(blobs), hdr[0], hdr[1])
		}
		if e.Length < crypto.MinOverhead {
			return nil, fmt.Errorf("pack header: entry %d: length %d too short", len(blobs), e.Length)
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

// parsePackTrailer reads the header length from the last 4 bytes of a
// pack of size packSize and returns the header's offset and length.
func parsePackTrailer(tail []byte, packSize int64) (int64, int, error) {
	if len(tail) < 4 || packSize < 4 {
		return 0, 0, errors.New("pack too short")
	}
	hl := int64(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if hl < crypto.MinOverhead+int64(len(packMagic)) || hl > maxHeaderSize || hl > packSize-4 {
		return 0, 0, fmt.Errorf("pack header length %d invalid for pack of %d bytes", hl, packSize)
	}
	return packSize - 4 - hl, int(hl), nil
}
