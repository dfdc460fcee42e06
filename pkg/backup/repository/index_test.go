package repository

import (
	"bytes"
	"encoding/json"
	"sort"
	"testing"
)

// encodeIndexJSON is how index files were first written (encoding/json
// of an indexFile): EncodeIndex must give the same bytes.
func encodeIndexJSON(packs map[ID][]PackBlob) []byte {
	f := indexFile{Version: 1}
	ids := make([]ID, 0, len(packs))
	for id := range packs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	for _, id := range ids {
		p := indexFilePack{ID: id}
		for _, b := range packs[id] {
			e := indexFileBlob{ID: b.ID, Type: b.Type, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Compressed: b.Compressed}
			if b.Inner != 0 || b.SegmentRaw != b.RawLength {
				e.Inner, e.SegmentRaw = b.Inner, b.SegmentRaw
			}
			p.Blobs = append(p.Blobs, e)
		}
		f.Packs = append(f.Packs, p)
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

func TestEncodeIndexMatchesJSON(t *testing.T) {
	tests := []struct {
		name  string
		packs map[ID][]PackBlob
	}{
		{name: "nil"},
		{name: "empty", packs: map[ID][]PackBlob{}},
		{name: "pack without blobs", packs: map[ID][]PackBlob{{1}: nil, {2}: {}}},
		{name: "blobs", packs: map[ID][]PackBlob{
			{9, 9}: {
				{BlobHandle: BlobHandle{Type: TreeBlob, ID: ID{1}}, Offset: 0, Length: 40, RawLength: 20, Compressed: true, SegmentRaw: 20},
				{BlobHandle: BlobHandle{ID: ID{2}}, Offset: 40, Length: 1<<32 - 1, RawLength: 1<<32 - 1, SegmentRaw: 1<<32 - 1},
			},
			{3}: {
				{BlobHandle: BlobHandle{ID: ID{4}}, Offset: 7, Length: 50, RawLength: 10, Compressed: true, SegmentRaw: 30},
				{BlobHandle: BlobHandle{ID: ID{5}}, Offset: 7, Length: 50, RawLength: 10, Compressed: true, Inner: 10, SegmentRaw: 30},
				{BlobHandle: BlobHandle{ID: ID{6}}, Offset: 7, Length: 50, RawLength: 10, Compressed: true, Inner: 20},
				{BlobHandle: BlobHandle{Type: 7, ID: ID{0xff}}, Offset: 99, RawLength: 0},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeIndex(tt.packs)
			if err != nil {
				t.Fatal(err)
			}
			if want := encodeIndexJSON(tt.packs); !bytes.Equal(got, want) {
				t.Fatalf("EncodeIndex:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

// BenchmarkEncodeIndex encodes 16 packs of 1000 blobs.
func BenchmarkEncodeIndex(b *testing.B) {
	packs := map[ID][]PackBlob{}
	for p := range 16 {
		var bs []PackBlob
		for i := range 1000 {
			bs = append(bs, PackBlob{BlobHandle: BlobHandle{ID: ID{byte(p), byte(i), byte(i >> 8)}}, Offset: uint32(i * 4000),
				Length: 4000, RawLength: 3000, Compressed: true, Inner: uint32(i%4) * 3000, SegmentRaw: 12000})
		}
		packs[ID{byte(p)}] = bs
	}
	b.Run("EncodeIndex", func(b *testing.B) {
		for b.Loop() {
			if _, err := EncodeIndex(packs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			encodeIndexJSON(packs)
		}
	})
}
