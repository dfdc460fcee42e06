package chunker

import (
	"errors"
	"fmt"
	"io"
	"math/bits"

	"lukechampine.com/blake3"
)

// Params fixes chunk sizes for a repository. They are stored in the
// repository config and never change, or deduplication against older
// snapshots would stop working.
type Params struct {
	Min int `json:"min"` // no boundary before Min bytes
	Avg int `json:"avg"` // expected chunk size, a power of two
	Max int `json:"max"` // a boundary is forced at Max bytes
}

// DefaultParams are the sizes of new repositories: 256 KiB minimum,
// 512 KiB average, 4 MiB maximum. Against 512 KiB/1 MiB/8 MiB they find
// more of the content that moved within or between files (a generated
// 1 GiB set, 30% of it runs copied from other files at unaligned
// offsets: repository 4-6% smaller), at the same speed, and a source
// tree's repository grows by 0.3%.
func DefaultParams() Params { return Params{Min: 256 << 10, Avg: 512 << 10, Max: 4 << 20} }

// Validate checks p for sizes the chunker supports.
func (p Params) Validate() error {
	switch {
	case p.Min < 64 || p.Avg <= p.Min || p.Max <= p.Avg:
		return fmt.Errorf("chunk sizes min=%d avg=%d max=%d must satisfy 64 <= min < avg < max", p.Min, p.Avg, p.Max)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("average chunk size %d is not a power of two", p.Avg)
	case p.Max > 64<<20:
		return fmt.Errorf("maximum chunk size %d above 64 MiB", p.Max)
	}
	return nil
}

// Chunker finds chunk boundaries. It is immutable and safe for concurrent use.
type Chunker struct {
	gear         [256]uint64
	p            Params
	maskS, maskL uint64
}

// New returns a chunker whose gear table is derived from seed.
func New(seed [32]byte, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Chunker{p: p}
	var table [256 * 8]byte
	blake3.DeriveKey(table[:], "hostd backup chunker gear table v1", seed[:])
	for i := range c.gear {
		var v uint64
		for j := range 8 {
			v |= uint64(table[i*8+j]) << (8 * j)
		}
		c.gear[i] = v
	}
	avgBits := bits.TrailingZeros(uint(p.Avg))
	// Normalized chunking (FastCDC level 2): a harder mask before the
	// average size, an easier one after it. Masks use the high bits, which
	// carry the most history of a left-shifting gear hash.
	c.maskS = topMask(avgBits + 2)
	c.maskL = topMask(avgBits - 2)
	return c, nil
}

func topMask(n int) uint64 {
	if n < 1 {
		n = 1
	}
	return ^uint64(0) << (64 - n)
}

// Params returns the sizes c was built with.
func (c *Chunker) Params() Params { return c.p }

// Cut returns the length of the first chunk of b. Unless eof is set, b must
// hold at least Max bytes (Cut panics otherwise); with eof, b is the whole
// rest of the stream and a final short chunk is returned.
func (c *Chunker) Cut(b []byte, eof bool) int {
	n := len(b)
	if !eof && n < c.p.Max {
		panic("chunker: Cut needs Max bytes before end of stream")
	}
	if n <= c.p.Min {
		return n
	}
	if n > c.p.Max {
		n = c.p.Max
	}
	normal := min(c.p.Avg, n)
	m, h := c.scan(b[c.p.Min:normal], 0, c.maskS)
	if m > 0 {
		return c.p.Min + m
	}
	if m, _ = c.scan(b[normal:n], h, c.maskL); m > 0 {
		return normal + m
	}
	return n
}

// scan runs the gear hash over b, starting from h, and returns the length
// of b up to and including the first byte after which h&mask is 0, or 0
// when there is none, and the hash after the last byte hashed.
//
// h(i+1) = 2h(i) + gear[b(i+1)] is one long dependency chain; four steps
// at once, h(i+4) = 16h(i) + (8g1 + 4g2 + 2g3 + g4), shorten it to one
// shift and add per four bytes, and the hashes in between (each tested
// against the mask) come off the chain. The boundaries are exactly the
// byte-by-byte ones.
func (c *Chunker) scan(b []byte, h, mask uint64) (int, uint64) {
	gear := &c.gear
	i := 0
	for ; i+4 <= len(b); i += 4 {
		q := b[i : i+4 : i+4]
		g1, g2, g3, g4 := gear[q[0]], gear[q[1]], gear[q[2]], gear[q[3]]
		t2 := g1<<1 + g2
		t3 := t2<<1 + g3
		h1 := h<<1 + g1
		h2 := h<<2 + t2
		h3 := h<<3 + t3
		h = h<<4 + (t3<<1 + g4)
		if (h1&mask == 0) || (h2&mask == 0) || (h3&mask == 0) || (h&mask == 0) {
			switch {
			case h1&mask == 0:
				return i + 1, h1
			case h2&mask == 0:
				return i + 2, h2
			case h3&mask == 0:
				return i + 3, h3
			}
			return i + 4, h
		}
	}
	for ; i < len(b); i++ {
		h = h<<1 + gear[b[i]]
		if h&mask == 0 {
			return i + 1, h
		}
	}
	return 0, h
}

// cutPartial is Cut on a buffer that may end before the stream does: it
// returns 0 when no boundary lies within b and b is shorter than Max (the
// caller must read more). from is how much of b an earlier call already
// scanned without finding a boundary: the scan resumes there. The gear
// hash at a position depends on the 64 bytes before it only, so it is
// rebuilt from those.
func (c *Chunker) cutPartial(b []byte, from int) int {
	if len(b) >= c.p.Max {
		return c.Cut(b, false)
	}
	if len(b) <= c.p.Min {
		return 0
	}
	normal := min(c.p.Avg, len(b))
	var h uint64
	i := c.p.Min
	if from-64 > i {
		// Rebuild the hash from the 64 bytes before from.
		for _, x := range b[from-64 : from] {
			h = h<<1 + c.gear[x]
		}
		i = from
	}
	if i < normal {
		m, hn := c.scan(b[i:normal], h, c.maskS)
		if m > 0 {
			return i + m
		}
		h, i = hn, normal
	}
	if m, _ := c.scan(b[i:], h, c.maskL); m > 0 {
		return i + m
	}
	return 0
}

// Split reads r to the end and calls fn with each chunk in order. buf is
// the read buffer: Max plus a few MiB is efficient for large inputs, the
// input's size plus one byte is enough for smaller ones (a buffer that
// fills up without a cut is replaced by one of Max plus 4 MiB); nil
// allocates one. The chunk passed to fn is only valid during the call.
// Data is moved within buf only when a chunk straddles its end.
func (c *Chunker) Split(r io.Reader, buf []byte, fn func(chunk []byte) error) error {
	if len(buf) == 0 {
		buf = make([]byte, c.p.Max+4<<20)
	}
	start, end := 0, 0
	scanned := 0 // bytes after start already scanned without a boundary
	eof := false
	for {
		var n int
		if eof {
			if start == end {
				return nil
			}
			n = c.Cut(buf[start:end], true)
		} else {
			n = c.cutPartial(buf[start:end], scanned)
		}
		if n > 0 {
			if err := fn(buf[start : start+n]); err != nil {
				return err
			}
			start += n
			scanned = 0
			continue
		}
		scanned = end - start
		// No boundary in what is buffered: move the rest to the front
		// and read more.
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if end == len(buf) && len(buf) < c.p.Max {
			// Full, and too small to hold the largest chunk.
			bigger := make([]byte, c.p.Max+4<<20)
			end = copy(bigger, buf[:end])
			buf = bigger
		}
		for end < len(buf) && !eof {
			m, err := r.Read(buf[end:])
			end += m
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return err
			}
			if m == 0 && err == nil {
				break
			}
		}
	}
}
