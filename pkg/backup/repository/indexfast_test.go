package repository

import (
	"encoding/json"
	"reflect"
	"testing"
)

// indexFastSeeds are index files as EncodeIndex writes them and close
// variants that encoding/json decodes but the fast path must leave to it.
func indexFastSeeds(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, packs := range []map[ID][]PackBlob{
		nil,
		{{7}: nil},
		{{7}: {{BlobHandle: BlobHandle{ID: ID{1}}, Length: 40, RawLength: 20, SegmentRaw: 20}}},
		{{7}: {
			{BlobHandle: BlobHandle{ID: ID{1}}, Length: 40, RawLength: 20, SegmentRaw: 30, Compressed: true},
			{BlobHandle: BlobHandle{ID: ID{2}}, Length: 40, RawLength: 10, Inner: 20, SegmentRaw: 30, Compressed: true},
		}, {9, 9}: {
			{BlobHandle: BlobHandle{Type: TreeBlob, ID: ID{3}}, Offset: 1<<32 - 41, Length: 40, RawLength: 1<<32 - 1, SegmentRaw: 1<<32 - 1},
		}},
	} {
		b, err := EncodeIndex(packs)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	const id = `"0700000000000000000000000000000000000000000000000000000000000000"`
	for _, s := range []string{
		`{"version":1,"packs":[]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[]}]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[{"id":` + id + `,"type":1,"offset":0,"length":1,"raw_length":1,"compressed":false}]}]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[{"id":` + id + `,"type":256,"offset":0,"length":1,"raw_length":1}]}]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[{"id":` + id + `,"type":0,"offset":4294967296,"length":1,"raw_length":1}]}]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[{"id":` + id + `,"type":0,"offset":01,"length":1,"raw_length":1}]}]}`,
		`{"version":1,"packs":[{"id":` + id + `,"blobs":[{"id":` + id + `,"type":0,"offset":0,"length":1,"raw_length":1,"inner":0,"segment_raw":5}]}]}`,
		`{"version":1,"packs":[{"id":"07000000000000000000000000000000000000000000000000000000000000AA","blobs":null}]}`,
		`{"version":1,"packs":null} `,
		`{"version":1,"packs":null,"version":2}`,
		`{"version":2,"packs":null}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// Index files as EncodeIndex writes them take the fast path; every input
// either path accepts decodes as encoding/json decodes it.
func TestDecodeIndexFast(t *testing.T) {
	for i, b := range indexFastSeeds(t) {
		fast, ok := decodeIndexFast(b)
		var want indexFile
		jerr := json.Unmarshal(b, &want)
		if i < 4 && !ok {
			t.Errorf("seed %d: EncodeIndex's output not on the fast path: %s", i, b)
		}
		if ok && (jerr != nil || !reflect.DeepEqual(fast, want)) {
			t.Errorf("seed %d: fast decoder differs from encoding/json (%v) on %s:\n%+v\n%+v", i, jerr, b, fast, want)
		}
		got, err := DecodeIndex(b)
		slow, serr := decodeIndexJSON(b)
		if (err == nil) != (serr == nil) || !reflect.DeepEqual(got, slow) {
			t.Errorf("seed %d: DecodeIndex %v %+v, encoding/json's path %v %+v", i, err, got, serr, slow)
		}
	}
}

// decodeIndexJSON is DecodeIndex on encoding/json's path alone.
func decodeIndexJSON(b []byte) (map[ID][]PackBlob, error) {
	var f indexFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return indexPacks(f)
}

// FuzzDecodeIndexFast holds the fast index decoder to encoding/json: on
// every input it accepts, json.Unmarshal succeeds with the same result.
func FuzzDecodeIndexFast(f *testing.F) {
	for _, b := range indexFastSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeIndexFast(b)
		if !ok {
			return
		}
		var slow indexFile
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast decoder differs from encoding/json on %q:\n%+v\n%+v", b, fast, slow)
		}
	})
}

func BenchmarkDecodeIndex(b *testing.B) {
	packs := map[ID][]PackBlob{}
	for p := range 16 {
		var bs []PackBlob
		for i := range 1000 {
			bs = append(bs, PackBlob{BlobHandle: BlobHandle{ID: ID{byte(p), byte(i), byte(i >> 8)}}, Offset: uint32(i) * 5000, Length: 4000,
				RawLength: 9000, Compressed: true, Inner: uint32(i%3) * 100, SegmentRaw: 20000})
		}
		packs[ID{byte(p)}] = bs
	}
	enc, err := EncodeIndex(packs)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeIndex(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			var f indexFile
			if err := json.Unmarshal(enc, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
