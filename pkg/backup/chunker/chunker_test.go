package chunker

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func split(t *testing.T, c *Chunker, data []byte) []int {
	t.Helper()
	var sizes []int
	if err := c.Split(bytes.NewReader(data), nil, func(ch []byte) error {
		sizes = append(sizes, len(ch))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sizes
}

func TestSplit(t *testing.T) {
	p := Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	c, err := New([32]byte{1}, p)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(8<<20, 1)
	sizes := split(t, c, data)
	total := 0
	for i, s := range sizes {
		total += s
		if s > p.Max || (s < p.Min && i != len(sizes)-1) {
			t.Fatalf("chunk %d of %d bytes outside [%d, %d]", i, s, p.Min, p.Max)
		}
	}
	if total != len(data) {
		t.Fatalf("chunks cover %d of %d", total, len(data))
	}
	avg := total / len(sizes)
	if avg < p.Avg/2 || avg > p.Avg*2 {
		t.Fatalf("average chunk %d far from %d", avg, p.Avg)
	}
	// Content defined: inserting bytes at the front shifts boundaries but
	// most chunks stay identical.
	shifted := split(t, c, append([]byte("inserted prefix"), data...))
	same := map[int]bool{}
	for _, s := range sizes[2:] {
		same[s] = true
	}
	match := 0
	for _, s := range shifted {
		if same[s] {
			match++
		}
	}
	if match < len(sizes)*3/4 {
		t.Fatalf("only %d of %d chunks survived a prefix insert", match, len(sizes))
	}
	// Secret seed: another key cuts elsewhere.
	c2, _ := New([32]byte{2}, p)
	if other := split(t, c2, data); len(other) > 2 && other[0] == sizes[0] && other[1] == sizes[1] {
		t.Fatal("different seeds produced the same boundaries")
	}
}

func TestSplitEdges(t *testing.T) {
	p := DefaultParams()
	c, _ := New([32]byte{}, p)
	tests := []struct {
		name string
		size int
		want int
	}{
		{"empty", 0, 0},
		{"tiny", 1, 1},
		{"below min", p.Min - 1, 1},
		{"zeros hit max", 2*p.Max + p.Max/2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(split(t, c, make([]byte, tc.size))); got != tc.want {
				t.Fatalf("%d chunks, want %d", got, tc.want)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	for _, p := range []Params{{0, 1 << 20, 8 << 20}, {1 << 20, 3 << 20, 8 << 20}, {1 << 10, 1 << 12, 1 << 30}, {1 << 12, 1 << 11, 1 << 20}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func BenchmarkCut(b *testing.B) {
	c, _ := New([32]byte{}, DefaultParams())
	data := randBytes(64<<20, 3)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = c.Split(bytes.NewReader(data), nil, func([]byte) error { return nil })
	}
}

// shortReader returns reads of random lengths, as pipes and network
// filesystems do.
type shortReader struct {
	data []byte
	r    *rand.Rand
}

func (s *shortReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data), 1+s.r.IntN(200<<10))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// Split finds the same boundaries as Cut applied to the whole stream,
// whatever its buffer and however the reader delivers the data.
func TestSplitMatchesCut(t *testing.T) {
	p := Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	c, err := New([32]byte{3}, p)
	if err != nil {
		t.Fatal(err)
	}
	// Random data, and text with long runs without a boundary (forced
	// cuts at Max).
	data := append(randBytes(3<<20, 7), bytes.Repeat([]byte("hostd backup "), 80<<10)...)
	var want []int
	for rest := data; len(rest) > 0; {
		n := c.Cut(rest, len(rest) < p.Max)
		want = append(want, n)
		rest = rest[n:]
	}
	tests := []struct {
		name string
		buf  int
	}{
		{"default buffer", 0},
		{"one byte, grown", 1},
		{"just over min", p.Min + 1},
		{"average", p.Avg},
		{"two averages", 2 * p.Avg},
		{"max plus slack", p.Max + 1<<20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			r := &shortReader{data: data, r: rand.New(rand.NewPCG(uint64(tc.buf), 1))}
			if err := c.Split(r, make([]byte, tc.buf), func(ch []byte) error {
				got = append(got, len(ch))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d chunks, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("chunk %d: %d bytes, want %d", i, got[i], want[i])
				}
			}
		})
	}
}

// A scan resumed just before a boundary finds the same boundary as a scan
// from the start: the gear hash is rebuilt from the 64 bytes before the
// resume point.
func TestCutPartialResume(t *testing.T) {
	p := Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	c, err := New([32]byte{4}, p)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for seed := uint64(1); checked < 20; seed++ {
		b := randBytes(p.Max-1, seed)
		n := c.cutPartial(b, 0)
		if n < p.Min+200 {
			continue
		}
		checked++
		for k := 1; k <= 100; k++ {
			if got := c.cutPartial(b, n-k); got != n {
				t.Fatalf("seed %d: resumed %d bytes before the boundary at %d: got %d", seed, k, n, got)
			}
		}
	}
}

// scanBytewise is the gear hash one byte at a time, the definition scan
// must match.
func scanBytewise(c *Chunker, b []byte, h, mask uint64) (int, uint64) {
	for i, x := range b {
		h = h<<1 + c.gear[x]
		if h&mask == 0 {
			return i + 1, h
		}
	}
	return 0, h
}

// TestScanMatchesBytewise checks the four-bytes-at-a-time scan against
// the byte-by-byte definition: every boundary offset modulo four, every
// tail length, easy and hard masks, carried-in hashes.
func TestScanMatchesBytewise(t *testing.T) {
	c, err := New([32]byte{7}, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(1<<20, 11)
	masks := []uint64{c.maskS, c.maskL, topMask(4), topMask(1), ^uint64(0)}
	var found [4]int
	r := rand.New(rand.NewPCG(5, 5))
	for range 20000 {
		off := r.IntN(len(data) - 4096)
		n := r.IntN(4096)
		b := data[off : off+n]
		h := r.Uint64()
		mask := masks[r.IntN(len(masks))]
		wantN, wantH := scanBytewise(c, b, h, mask)
		gotN, gotH := c.scan(b, h, mask)
		if gotN != wantN || gotH != wantH {
			t.Fatalf("scan(len %d, h %#x, mask %#x) = %d, %#x; byte by byte %d, %#x", n, h, mask, gotN, gotH, wantN, wantH)
		}
		if gotN > 0 {
			found[(gotN-1)%4]++
		}
	}
	for i, n := range found {
		if n == 0 {
			t.Errorf("no boundary found at offset %d modulo 4: the test does not cover that branch", i)
		}
	}
}

// The gear table decides every chunk boundary, so deduplication against
// older snapshots needs it never to change: BLAKE3 in key derivation mode
// over the seed, read as little-endian words.
func TestGearTablePinned(t *testing.T) {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	c, err := New(seed, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]uint64{0: 0xabd056caa2c538db, 1: 0x9981ab88656fbfa2, 128: 0xea428447c6946c77, 255: 0xa23d05311077f76c} {
		if c.gear[i] != want {
			t.Errorf("gear[%d] = %#016x, want %#016x", i, c.gear[i], want)
		}
	}
}
