package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/pkg/backup/crypto"
)

func testKey(t testing.TB) *crypto.Key {
	t.Helper()
	k, err := crypto.NewRandomKeyFor(crypto.DefaultCipher)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func FuzzDecodePackHeader(f *testing.F) {
	v1 := []PackBlob{
		{BlobHandle: BlobHandle{Type: DataBlob, ID: ID{1}}, Length: 100, RawLength: 84, SegmentRaw: 84},
		{BlobHandle: BlobHandle{Type: TreeBlob, ID: ID{2}}, Offset: 100, Length: 60, RawLength: 300, Compressed: true, SegmentRaw: 300},
	}
	v2 := []PackBlob{
		{BlobHandle: BlobHandle{Type: DataBlob, ID: ID{1}}, Length: 100, RawLength: 84, Compressed: true, SegmentRaw: 94},
		{BlobHandle: BlobHandle{Type: DataBlob, ID: ID{3}}, Length: 100, RawLength: 10, Compressed: true, Inner: 84, SegmentRaw: 94},
		{BlobHandle: BlobHandle{Type: TreeBlob, ID: ID{2}}, Offset: 100, Length: 60, RawLength: 300, SegmentRaw: 300},
	}
	f.Add(encodePackHeaderV1(v1), int64(160))
	f.Add(encodePackHeaderV2(v2), int64(160))
	f.Add([]byte(packMagicV1), int64(0))
	f.Add([]byte(packMagicV2), int64(0))
	f.Add([]byte("garbage"), int64(10))
	// Attacks: a header claiming more entries or segments than the data
	// holds, a segment longer than any segment can be, a count of blobs
	// past the header's end.
	f.Add(append([]byte(packMagicV1), make([]byte, 1000*packEntrySize)...), int64(1<<40))
	f.Add(append([]byte(packMagicV2), 0, 0xff, 0xff, 0xff, 0xff, 1, 0), int64(1<<40))
	f.Add(append([]byte(packMagicV2), 0, 100, 0, 0, 0, 0xff, 0xff), int64(100))
	f.Add(encodePackHeaderV2(v2), int64(-1))
	f.Fuzz(func(t *testing.T, hdr []byte, end int64) {
		got, err := DecodePackHeader(hdr, end)
		if err != nil {
			return
		}
		// Segments tile the data; the blobs of a segment tile its
		// plaintext.
		var sum int64
		for i, b := range got {
			if i > 0 && got[i-1].Offset == b.Offset {
				p := got[i-1]
				if b.Inner != p.Inner+p.RawLength || b.Length != p.Length || b.SegmentRaw != p.SegmentRaw {
					t.Fatalf("blob %d does not follow blob %d in its segment", i, i-1)
				}
				continue
			}
			if int64(b.Offset) != sum || b.Inner != 0 {
				t.Fatalf("segment at %d (inner %d), want %d", b.Offset, b.Inner, sum)
			}
			sum += int64(b.Length)
		}
		if sum != end {
			t.Fatalf("segments cover %d of %d", sum, end)
		}
		encode := encodePackHeaderV1
		if string(hdr[:len(packMagicV2)]) == packMagicV2 {
			encode = encodePackHeaderV2
		}
		if again := encode(got); !bytes.Equal(again, hdr) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzPackTrailer(f *testing.F) {
	k := testKey(f)
	p := &packBuilder{buf: make([]byte, 0, 1024)}
	k.Seal(p.reserve([]segBlob{{h: BlobHandle{ID: ID{9}}, rawLen: 5}}, 5+k.Overhead(), 5, false)[:0], []byte("hello"))
	p.writers.Done()
	data, _ := p.finish(k, true)
	f.Add(data)
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Repository{key: k}
		_, _ = r.decodePackTail(data, int64(len(data)))
	})
}

func FuzzDecodeIndex(f *testing.F) {
	b, _ := EncodeIndex(map[ID][]PackBlob{{7}: {{BlobHandle: BlobHandle{ID: ID{1}}, Length: 40, RawLength: 20, SegmentRaw: 20}}})
	f.Add(b)
	b, _ = EncodeIndex(map[ID][]PackBlob{{7}: {
		{BlobHandle: BlobHandle{ID: ID{1}}, Length: 40, RawLength: 20, SegmentRaw: 30},
		{BlobHandle: BlobHandle{ID: ID{2}}, Length: 40, RawLength: 10, Inner: 20, SegmentRaw: 30},
	}})
	f.Add(b)
	f.Add([]byte(`{"version":1,"packs":[{"id":"0700000000000000000000000000000000000000000000000000000000000000","blobs":[{"id":"0100000000000000000000000000000000000000000000000000000000000000","offset":0,"length":40,"raw_length":20,"inner":15,"segment_raw":30}]}]}`))
	f.Add([]byte(`{"version":1,"packs":[{"id":"zz"}]}`))
	f.Add([]byte(`{"version":2}`))
	// Attacks: a blob claiming a 4 GiB segment, a segment larger than a
	// segment can be, an extent past 4 GiB.
	f.Add([]byte(`{"version":1,"packs":[{"id":"0700000000000000000000000000000000000000000000000000000000000000","blobs":[{"id":"0100000000000000000000000000000000000000000000000000000000000000","offset":0,"length":4294967295,"raw_length":20}]}]}`))
	f.Add([]byte(`{"version":1,"packs":[{"id":"0700000000000000000000000000000000000000000000000000000000000000","blobs":[{"id":"0100000000000000000000000000000000000000000000000000000000000000","offset":0,"length":40,"raw_length":20,"segment_raw":4294967295}]}]}`))
	f.Add([]byte(`{"version":1,"packs":[{"id":"0700000000000000000000000000000000000000000000000000000000000000","blobs":[{"id":"0100000000000000000000000000000000000000000000000000000000000000","offset":4294967200,"length":400,"raw_length":20}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		packs, err := DecodeIndex(b)
		if err != nil {
			return
		}
		x := NewIndex()
		for id, bs := range packs {
			x.AddPack(id, bs)
		}
		again, err := EncodeIndex(x.Packs())
		if err != nil {
			t.Fatal(err)
		}
		if want := encodeIndexJSON(x.Packs()); !bytes.Equal(again, want) {
			t.Fatalf("EncodeIndex differs from encoding/json:\n%s\n%s", again, want)
		}
		if _, err := DecodeIndex(again); err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
	})
}

func FuzzDecodeTree(f *testing.F) {
	id := ID{3}
	tree := &Tree{Nodes: []Node{
		{Name: "a\xff\nb", Type: NodeFile, Mode: 0o644, Content: []ID{{1}}},
		{Name: "dir", Type: NodeDir, Subtree: &id},
		{Name: "l", Type: NodeSymlink, LinkTarget: "\xfe/x", Xattrs: []Xattr{{Name: "user.x", Value: "\x00\x01"}}},
	}}
	b, _ := EncodeTree(tree)
	f.Add(b)
	f.Add([]byte(`{"nodes":[{"name":{"b64":"//8="},"type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"..","type":"dir"}]}`))
	// Attacks: oversized names, link targets and attributes, a directory
	// without a subtree, nodes out of order, a path separator in a name.
	f.Add([]byte(`{"nodes":[{"name":"` + strings.Repeat("n", maxNameLen+1) + `","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"l","type":"symlink","link_target":"` + strings.Repeat("t", maxLinkTarget+1) + `"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"x","type":"file","xattrs":[{"name":"","value":"v"}]}]}`))
	f.Add([]byte(`{"nodes":[{"name":"d","type":"dir"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a/b","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			return
		}
		again, err := EncodeTree(tr)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(tr); !bytes.Equal(again, want) {
			t.Fatalf("EncodeTree differs from encoding/json:\n%s\n%s", again, want)
		}
		tr2, err := DecodeTree(again)
		if err != nil {
			t.Fatalf("re-encoded tree does not decode: %v", err)
		}
		for i := range tr.Nodes {
			if tr.Nodes[i].Name != tr2.Nodes[i].Name || tr.Nodes[i].LinkTarget != tr2.Nodes[i].LinkTarget {
				t.Fatalf("bytes did not survive: %q", tr.Nodes[i].Name)
			}
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	b, _ := json.Marshal(Snapshot{Time: time.Unix(1e9, 0), Tree: ID{1}, Paths: []string{"/x"}})
	f.Add(b)
	f.Add([]byte(`{"time":"x"}`))
	f.Add([]byte(`{"time":"2001-09-09T01:46:40Z","tree":"0000000000000000000000000000000000000000000000000000000000000000"}`))
	f.Add([]byte(`{"time":"2001-09-09T01:46:40Z","tree":"01","paths":[` + strings.Repeat(`"/x",`, 1000) + `"/y"]}`))
	f.Add([]byte(`{"time":"2001-09-09T01:46:40Z","tree":"0100000000000000000000000000000000000000000000000000000000000000","summary":{"files_new":-1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		if s.Tree.IsNull() || s.Time.IsZero() {
			t.Fatalf("snapshot without tree or time accepted")
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	b, _ := json.Marshal(DefaultConfig())
	f.Add(b)
	f.Add([]byte(`{"version":1,"chunker":{"min":0}}`))
	// Attacks: absurd pack sizes and versions a hostile config would use
	// to make every pack read huge.
	big := DefaultConfig()
	big.PackSize = 1 << 40
	b, _ = json.Marshal(big)
	f.Add(b)
	big = DefaultConfig()
	big.Version = 99
	b, _ = json.Marshal(big)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded config does not validate: %v", err)
		}
	})
}

func FuzzDecodeKeyFile(f *testing.F) {
	b, _ := json.Marshal(KeyFile{KDF: crypto.NewKDFParams(1, 64, 1), Data: make([]byte, 60)})
	f.Add(b)
	// Attacks: the planted key file of 4 GiB and 100 passes, 255 threads,
	// memory past uint32, a sealed key of the wrong size, bad base64,
	// truncated JSON.
	bomb := KeyFile{KDF: crypto.KDFParams{Time: 100, MemoryKiB: 4 << 20, Threads: 4, Salt: make([]byte, 16)}, Data: make([]byte, 240)}
	b, _ = json.Marshal(bomb)
	f.Add(b)
	bomb.KDF = crypto.KDFParams{Time: 1, MemoryKiB: 1 << 16, Threads: 255, Salt: make([]byte, 16)}
	b, _ = json.Marshal(bomb)
	f.Add(b)
	f.Add([]byte(`{"kdf":{"time":1,"memory_kib":1099511627776,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":"AAAA"}`))
	f.Add([]byte(`{"kdf":{"time":1,"memory_kib":64,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"data":"AAAA"}`))
	f.Add([]byte(`{"kdf":{"time":1,"memory_kib":64,"threads":1,"salt":"!!"},"data":"AAAA"}`))
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := DecodeKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrKeyFileDamaged) && !errors.Is(err, crypto.ErrKDFOutOfRange) {
				t.Fatalf("error neither damaged nor out of range: %v", err)
			}
			return
		}
		if kf.KDF.Validate() != nil || kf.KDF.Work() > crypto.MaxKDFWork {
			t.Fatalf("accepted KDF parameters out of range: %+v", kf.KDF)
		}
		if kf.KDF.MemoryKiB > 1<<12 || kf.KDF.Work() > 1<<13 {
			return // valid but too slow to derive in a fuzz loop
		}
		w, err := crypto.DeriveWrappingKey([]byte("pw"), kf.KDF)
		if err == nil {
			_, _ = w.Unwrap(kf.Data)
		}
	})
}

func FuzzDecodeLock(f *testing.F) {
	b, _ := json.Marshal(LockInfo{Time: time.Unix(1e9, 0), PID: 1, Hostname: "h"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = DecodeLock(b) })
}

func FuzzDecryptFile(f *testing.F) {
	k := testKey(f)
	r := &Repository{key: k}
	r2, err := newRepository(nil, k, DefaultConfig(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	r.enc, r.dec = r2.enc, r2.dec
	f.Add(r.encryptFile([]byte(`{"a":1}`)))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := r.DecryptFile(b); err == nil && len(b) < crypto.MinOverhead {
			t.Fatal("input shorter than nonce and tag decrypted")
		}
	})
}

// FuzzDecodeTreeFast holds the fast tree decoder to encoding/json: on
// every input it accepts, json.Unmarshal succeeds with the same tree.
func FuzzDecodeTreeFast(f *testing.F) {
	id := ID{3}
	for _, tr := range []*Tree{
		{Nodes: []Node{}},
		{Nodes: []Node{
			{Name: "a\xff\nb", Type: NodeFile, Mode: 0o644, Content: []ID{{1}}},
			{Name: "dir", Type: NodeDir, Subtree: &id},
			{Name: "l", Type: NodeSymlink, LinkTarget: "\xfe/x", Xattrs: []Xattr{{Name: "user.x", Value: "\x00\x01"}}},
		}},
		{Nodes: []Node{
			{Name: "f.go", Type: NodeFile, Mode: 0o100644, UID: 1000, GID: 1000, User: "u", Group: "g", Size: 1 << 40, MTimeNs: -1 << 63,
				ATimeNs: 1<<63 - 1, CTimeNs: -1, Inode: 1<<64 - 1, Device: 2049, Links: 2, Rdev: 5, Content: []ID{{1}, {2}}, Sparse: true},
			{Name: "l→ü", Type: NodeSymlink, LinkTarget: "../a", Xattrs: []Xattr{{Name: "user.a", Value: "1"}, {Name: "user.b", Value: ""}}},
			{Name: "x", Type: NodeDir, Mode: 0o40755, Subtree: &id},
		}},
	} {
		b, err := EncodeTree(tr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":0,"uid":0,"gid":0,"mtime_ns":-0}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":4294967296,"uid":0,"gid":0,"mtime_ns":0}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":01,"uid":0,"gid":0,"mtime_ns":0}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":0,"uid":0,"gid":0,"mtime_ns":9223372036854775808}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file","mode":0,"uid":0,"gid":0,"mtime_ns":0,"content":["0300000000000000000000000000000000000000000000000000000000000000"],"sparse":true}]} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeTreeFast(b)
		if !ok {
			return
		}
		var slow Tree
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(fast, &slow) {
			t.Fatalf("fast decoder differs from encoding/json on %q:\n%+v\n%+v", b, fast, &slow)
		}
	})
}
