package chunker

import (
	"bytes"
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
	c, _ := New([32]byte{}, DefaultParams())
	tests := []struct {
		name string
		size int
		want int
	}{
		{"empty", 0, 0},
		{"tiny", 1, 1},
		{"below min", 100 << 10, 1},
		{"zeros hit max", 20 << 20, 3},
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
