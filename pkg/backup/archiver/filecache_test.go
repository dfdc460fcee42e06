package archiver

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/pkg/backup/repository"
)

func testID(b byte) repository.ID {
	var id repository.ID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func TestFileCacheRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		seen map[string]CacheEntry
		old  map[string]CacheEntry
		want map[string]CacheEntry
	}{
		{name: "empty", want: map[string]CacheEntry{}},
		{
			name: "seen entries",
			seen: map[string]CacheEntry{
				"/a":                            {Size: 1, MTimeNs: 2, CTimeNs: 3, Inode: 4, Content: []repository.ID{testID(1)}},
				"/empty":                        {MTimeNs: -5, CTimeNs: -1 << 62},
				"/b\xff\nname":                  {Size: 1 << 40, MTimeNs: 1 << 62, Inode: 1<<64 - 1, Content: []repository.ID{testID(2), testID(3), testID(2)}},
				"/" + string(make([]byte, 300)): {Size: 9},
			},
			want: map[string]CacheEntry{
				"/a":                            {Size: 1, MTimeNs: 2, CTimeNs: 3, Inode: 4, Content: []repository.ID{testID(1)}},
				"/empty":                        {MTimeNs: -5, CTimeNs: -1 << 62},
				"/b\xff\nname":                  {Size: 1 << 40, MTimeNs: 1 << 62, Inode: 1<<64 - 1, Content: []repository.ID{testID(2), testID(3), testID(2)}},
				"/" + string(make([]byte, 300)): {Size: 9},
			},
		},
		{
			name: "unseen entries age and expire",
			seen: map[string]CacheEntry{"/both": {Size: 2}},
			old: map[string]CacheEntry{
				"/both":  {Size: 1, Age: 7},
				"/young": {Size: 3, Age: 0},
				"/last":  {Size: 4, Age: cacheMaxAge - 2},
				"/gone":  {Size: 5, Age: cacheMaxAge - 1},
			},
			want: map[string]CacheEntry{
				"/both":  {Size: 2},
				"/young": {Size: 3, Age: 1},
				"/last":  {Size: 4, Age: cacheMaxAge - 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFileCache(encodeFileCache(tt.seen, tt.old))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(got, tt.want, entryEqual) {
				t.Fatalf("decoded %v, want %v", got, tt.want)
			}
		})
	}
}

func entryEqual(a, b CacheEntry) bool {
	return a.Size == b.Size && a.MTimeNs == b.MTimeNs && a.CTimeNs == b.CTimeNs && a.Inode == b.Inode &&
		a.Age == b.Age && len(a.Content) == len(b.Content) && (len(a.Content) == 0 || bytes.Equal(
		repositoryIDs(a.Content), repositoryIDs(b.Content)))
}

func repositoryIDs(ids []repository.ID) []byte {
	var b []byte
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// TestFileCacheDamage cuts and flips a cache file at every byte: each
// must fail to decode (a damaged cache is ignored), never panic or decode
// to something else.
func TestFileCacheDamage(t *testing.T) {
	b := encodeFileCache(map[string]CacheEntry{
		"/x": {Size: 10, MTimeNs: 20, Content: []repository.ID{testID(9)}},
		"/y": {Size: 11, Inode: 3},
	}, nil)
	for i := range len(b) {
		if _, err := decodeFileCache(b[:i]); err == nil {
			t.Fatalf("cut at %d of %d: decoded", i, len(b))
		}
		d := bytes.Clone(b)
		d[i] ^= 0x10
		if _, err := decodeFileCache(d); err == nil {
			t.Fatalf("byte %d flipped: decoded", i)
		}
	}
}

// TestLoadFileCache: Save then Load gives the entries back; a missing
// file, a damaged one and one in the older gob format load as empty.
func TestLoadFileCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "files")
	if c := LoadFileCache(path); len(c.old) != 0 {
		t.Fatalf("missing cache: %d entries", len(c.old))
	}
	c := LoadFileCache(path)
	n := &repository.Node{Size: 5, MTimeNs: 6, CTimeNs: 7, Inode: 8}
	c.Store("/f", n, []repository.ID{testID(4)})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	got := LoadFileCache(path)
	if ids, ok := got.Lookup("/f", n); !ok || len(ids) != 1 || ids[0] != testID(4) {
		t.Fatalf("Lookup after Save: %v %v", ids, ok)
	}
	if _, ok := got.Lookup("/f", &repository.Node{Size: 5, MTimeNs: 6, CTimeNs: 7, Inode: 9}); ok {
		t.Fatal("Lookup matched another inode")
	}

	var old bytes.Buffer
	if err := gob.NewEncoder(&old).Encode(map[string]CacheEntry{"/f": {Size: 5}}); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"gob": old.Bytes(), "truncated": encodeFileCache(got.old, nil)[:20]} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if c := LoadFileCache(path); len(c.old) != 0 {
			t.Errorf("%s cache: %d entries, want none", name, len(c.old))
		}
	}
}

// FuzzDecodeFileCache fuzzes the body of a cache file, between the magic
// and a checksum made to match, so the fuzzer reaches the parser.
func FuzzDecodeFileCache(f *testing.F) {
	body := func(b []byte) []byte { return b[len(fileCacheMagic) : len(b)-4] }
	f.Add(body(encodeFileCache(nil, nil)))
	f.Add(body(encodeFileCache(map[string]CacheEntry{"/a": {Size: 1, Content: []repository.ID{testID(1)}}}, nil)))
	f.Add(body(encodeFileCache(map[string]CacheEntry{"/a": {MTimeNs: -1}, "/b": {Age: 3}}, nil)))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append([]byte(fileCacheMagic), body...)
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
		m, err := decodeFileCache(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a file that decodes the same.
		again, err := decodeFileCache(encodeFileCache(m, nil))
		if err != nil || !maps.EqualFunc(again, m, entryEqual) {
			t.Fatalf("re-encoding changed the cache: %v", err)
		}
	})
}
