package crypto

import (
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
	"lukechampine.com/blake3/guts"
)

// Key.ID and Hash switch BLAKE3 implementations at largeInput: the hash
// must be the same on both sides of the switch, at chunk (1 KiB) and
// SIMD-batch (16 KiB) boundaries, and for odd sizes.
func TestLargeInputSameHash(t *testing.T) {
	k, err := NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := blake3.NewKeyed(k.IDKey[:])
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4<<20+3)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	sizes := []int{0, 1, 1023, 1024, 1025, 16 << 10, largeInput - 1, largeInput, largeInput + 1,
		largeInput + 1024, largeInput + 16<<10 + 7, 512 << 10, 1<<20 - 1, 4 << 20, 4<<20 + 3}
	for k := range 40 {
		sizes = append(sizes, largeInput+k*guts.ChunkSize, largeInput+k*guts.ChunkSize+1)
	}
	for range 20 {
		sizes = append(sizes, largeInput+r.IntN(len(data)-largeInput))
	}
	for _, n := range sizes {
		ref.Reset()
		_, _ = ref.Write(data[:n])
		var want ID
		ref.Sum(want[:0])
		if got := k.ID(data[:n]); got != want {
			t.Errorf("ID of %d bytes differs from zeebo/blake3's keyed hash", n)
		}
		if got := Hash(data[:n]); got != blake3.Sum256(data[:n]) {
			t.Errorf("Hash of %d bytes differs from zeebo/blake3's", n)
		}
	}
	if n := testing.AllocsPerRun(20, func() { k.ID(data[:1<<20+3]) }); n > 0 {
		t.Errorf("ID of a large input allocates %.1f times per call", n)
	}
}

func BenchmarkHash4MiB(b *testing.B) {
	data := make([]byte, 4<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = Hash(data)
	}
}
