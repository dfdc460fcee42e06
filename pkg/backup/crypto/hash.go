package crypto

import (
	"encoding/binary"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// Hash returns the unkeyed BLAKE3-256 hash of b.
func Hash(b []byte) [32]byte {
	return sum(b, &guts.IV, 0)
}

// keyWords returns a BLAKE3 key as the compression function's words.
func keyWords(key *[KeySize]byte) (w [8]uint32) {
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(key[i*4:])
	}
	return w
}

// sum returns the BLAKE3-256 hash of data for key and flags (guts.IV and
// 0 unkeyed, the key and FlagKeyedHash keyed). It builds the tree as
// lukechampine.com/blake3's Hasher does, but on the calling goroutine
// and without allocating: the Hasher starts a goroutine for every 16
// chunks of a large input, which in a backup whose pipeline already
// keeps every core busy costs allocations and stack growth for nothing.
// On CPUs with AVX-512, guts compresses 16 chunks at once.
func sum(data []byte, key *[8]uint32, flags uint32) (out [32]byte) {
	const batch = guts.MaxSIMD * guts.ChunkSize
	// Subtree roots waiting for a sibling, one per height: bit h of
	// counter (chunks so far) says whether stack[h] holds one.
	var stack [64][8]uint32
	var counter uint64
	push := func(cv [8]uint32, height int) {
		h := height
		for ; counter&(1<<h) != 0; h++ {
			cv = guts.ChainingValue(guts.ParentNode(stack[h], cv, key, flags))
		}
		stack[h] = cv
		counter += 1 << height
	}
	// Every full chunk but the last one, which becomes the root below.
	full := (len(data) - 1) / guts.ChunkSize
	off := 0
	for ; full-off/guts.ChunkSize >= guts.MaxSIMD; off += batch {
		n := guts.CompressBuffer((*[batch]byte)(data[off:off+batch]), batch, key, counter, flags)
		push(guts.ChainingValue(n), 4)
	}
	// Fewer than 16 chunks left: subtrees of 8, 4, 2 and 1 chunks, as
	// the counter's alignment requires.
	var buf [batch]byte
	for rest, height := full-off/guts.ChunkSize, 3; rest > 0; height-- {
		size := 1 << height
		if rest < size {
			continue
		}
		var n guts.Node
		if size == 1 {
			n = guts.CompressChunk(data[off:off+guts.ChunkSize], key, counter, flags)
		} else {
			m := copy(buf[:], data[off:off+size*guts.ChunkSize])
			n = guts.CompressBuffer(&buf, m, key, counter, flags)
		}
		push(guts.ChainingValue(n), height)
		off += size * guts.ChunkSize
		rest -= size
	}
	n := guts.CompressChunk(data[off:], key, counter, flags)
	for h := bits.TrailingZeros64(counter); h < bits.Len64(counter); h++ {
		if counter&(1<<h) != 0 {
			n = guts.ParentNode(stack[h], guts.ChainingValue(n), key, flags)
		}
	}
	n.Flags |= guts.FlagRoot
	b := guts.WordsToBytes(guts.CompressNode(n))
	copy(out[:], b[:32])
	return out
}
