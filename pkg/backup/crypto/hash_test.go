package crypto

import (
	"encoding/hex"
	"testing"
)

// Blob and file IDs name what a repository stores, so the hashes must
// never change. The inputs are those of the BLAKE3 test vectors (byte i
// is i mod 251, key "whats the Elvish word for friend"); the sizes up to
// 102400 are vectors of the BLAKE3 test suite, the larger ones (chunk
// and pack sizes, and around the 256 KiB minimum chunk) were computed
// with both lukechampine.com/blake3 and github.com/zeebo/blake3.
func TestHashVectors(t *testing.T) {
	k := &Key{Cipher: AES256GCM}
	copy(k.IDKey[:], "whats the Elvish word for friend")
	if err := k.init(); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20+3)
	for i := range data {
		data[i] = byte(i % 251)
	}
	tests := []struct {
		n           int
		hash, keyed string
	}{
		{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"},
		{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213", "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b"},
		{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11", "c951ecdf03288d0fcc96ee3413563d8a6d3589547f2c2fb36d9786470f1b9d6e"},
		{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7", "75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4"},
		{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444", "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69"},
		{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085", "1c35d1a5811083fd7119f5d5d1ba027b4d01c0c6c49fb6ff2cf75393ea5db4a7"},
		{256<<10 - 1, "4fbb10c248894f1b56ec8298555b96e597147150a061b1cf1af19f16dbc0557b", "0d4cbd1e5f3a11907e5cefbaf95d9d1e24405e0990277e26f82ca8f40e124b60"},
		{256 << 10, "d57dc906e20d3fd326ffaa85535500486f46a0979f5a323f028dcabfd381fd4a", "78b2f14279f6b0c44ad68e55dbf038e8e5a7f5d09cd328e8b4a8ce0f6ea900a0"},
		{256<<10 + 1, "531c319935cf78f34869faebd865e5748266b1799039103bfb851a680d9ed30c", "d90e1ca9e8c450f1937898a2a38d4fe2e6977cfa280db88213603eb9e61af23d"},
		{1<<20 + 3, "dc51e3daeb5dbbb6a3eb12209fbb7cb14a74fc866a4ad82bc7eb703f536c1092", "72b284e8fed51deacda60d64c59e6edc57ac760ffdf28eb8f5d2389157952ac1"},
		{4 << 20, "4e94e6f582581a0f3855f3ce504b153e951e65036fe9e2f010b7e25473c54f98", "182b531d06d2705f68e23dc6a5580481f3342ded15cece016b58e0922e75c0e3"},
		{4<<20 + 3, "739c6c1bdbad3d0e5ce6b2e51abf0cfa37b015dc956a9990b3a7cd59f76e7432", "5e2396d3021f6502ce2ced788fa49f3d266e8413d1c0dabf6117f493e1f877d4"},
	}
	for _, tc := range tests {
		if h := Hash(data[:tc.n]); hex.EncodeToString(h[:]) != tc.hash {
			t.Errorf("Hash of %d bytes = %x, want %s", tc.n, h, tc.hash)
		}
		if id := k.ID(data[:tc.n]); id.String() != tc.keyed {
			t.Errorf("ID of %d bytes = %s, want %s", tc.n, id, tc.keyed)
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

func BenchmarkID4KiB(b *testing.B) {
	k, _ := NewRandomKeyFor(DefaultCipher)
	data := make([]byte, 4<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = k.ID(data)
	}
}
