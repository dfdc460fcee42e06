package restic

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hostd/hostd/pkg/backup/importer"
)

// Decoders of what a restic repository holds, fuzzed with Go's native
// fuzzing (go test -fuzz FuzzDecodeTree ./pkg/backup/importer/restic/).
// The seed corpus in testdata/fuzz holds files restic 0.14 wrote and the
// attacks the decoders must refuse; the properties checked are: no
// panic, no hang, and every accepted result within the bounds promised.

const seedTree = `{"nodes":[{"name":"bad\\xffname","type":"file","mode":420,"mtime":"2026-12-06T07:14:43.44801803Z","atime":"2026-12-06T07:14:43.44801803Z","ctime":"2026-12-06T07:14:43.44801803Z","uid":0,"gid":0,"user":"root","group":"root","inode":10554271,"device_id":65024,"size":1,"links":1,"content":["2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"]},{"name":"d","type":"dir","mode":2147484141,"mtime":"2026-12-06T07:14:43.44801803Z","uid":0,"gid":0,"content":null,"subtree":"4a09e578f1c22b275f9af145e3a818a2d33aad2acadba0e7696e78fc8bd29324"},{"name":"sym","type":"symlink","mode":134218239,"mtime":"2026-12-06T07:14:43Z","linktarget":"d/a","content":null},{"name":"x","type":"file","mode":8389028,"size":0,"extended_attributes":[{"name":"user.a","value":"dmFs/w=="}],"content":[]}]}`

func FuzzDecodeTree(f *testing.F) {
	f.Add([]byte(seedTree))
	f.Add([]byte(`{"nodes":[{"name":"..","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a/b","type":"dir","subtree":"00"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"file"},{"name":"a","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"\"","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := decodeTree(b)
		if err != nil {
			return
		}
		for i, n := range nodes {
			if n.Name == "" || n.Name == "." || n.Name == ".." || bytes.ContainsAny([]byte(n.Name), "/\x00") || len(n.Name) > maxNameLen {
				t.Fatalf("accepted name %q", n.Name)
			}
			if i > 0 && nodes[i-1].Name >= n.Name {
				t.Fatalf("names out of order: %q, %q", nodes[i-1].Name, n.Name)
			}
			if len(n.LinkTarget) > maxLinkTarget || len(n.Xattrs) > maxXattrs {
				t.Fatalf("node %q beyond bounds", n.Name)
			}
			if n.Type != "file" && len(n.Content) > 0 {
				t.Fatalf("content on a %s", n.Type)
			}
		}
	})
}

const seedIndex = `{"packs":[{"id":"5ce46662c164249dabc96c61beab94bfad40b8e235a86db7f91852736e730aa9","blobs":[{"id":"85457e955b60c89e07da1de79939fec997f1f57e5bef9ad9f3ea5b2ae0b6c880","type":"tree","offset":951,"length":250,"uncompressed_length":350},{"id":"e5437dce9b728420954360cdb010e6351fda5f457da7885916c998f69df855c2","type":"data","offset":310,"length":641}]}]}`

func FuzzDecodeIndex(f *testing.F) {
	f.Add([]byte(seedIndex))
	f.Add([]byte(`[{"id":"00","blobs":[]}]`))
	f.Add([]byte(`{"packs":[{"id":"5ce46662c164249dabc96c61beab94bfad40b8e235a86db7f91852736e730aa9","blobs":[{"id":"85457e955b60c89e07da1de79939fec997f1f57e5bef9ad9f3ea5b2ae0b6c880","type":"data","offset":4294967295,"length":4294967295,"uncompressed_length":-1}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx := map[blobKey]location{}
		n, err := decodeIndex(b, idx, 100)
		if n > 100 || len(idx) > 100 {
			t.Fatalf("%d blobs past a budget of 100", len(idx))
		}
		if err != nil {
			return
		}
		for k, l := range idx {
			lim := uint32(maxDataBlob)
			if k.t == treeBlob {
				lim = maxTreeBlob
			}
			if l.length < overhead || l.length > lim || l.raw > lim || uint64(l.offset)+uint64(l.length) > 1<<32-1 {
				t.Fatalf("accepted location %+v", l)
			}
		}
	})
}

func FuzzDecodeKeyFile(f *testing.F) {
	f.Add([]byte(`{"created":"2026-12-06T07:14:45Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":4,"salt":"WTfV7nNTV++8XQ7O6r3NJVNTuDWl5xQponawKjcpVy9UCgPi8Pqh3zMYttwMPQU7+RPQ+1E1KZKzKlHkLT5Yxg==","data":"R+0bir5TZubgEo6cOUhewseTMf6cL3DyJEgGcuBR23GvW/Sj/T6vUi17BB3ldZv3zILw/1f4kgLw8yn7q7qx95tSFTo/Kb4dUY2AcONAw8Ye4mXPjMIgJznRWngCC9d8GievoUGzPqlPoZo8PA0+lQgousVG/canhzmxb9Bt9hw86jasj9byM/hH09ds23MGWmjIq8kUp7Oofq7kCQ/EUQ=="}`))
	f.Add([]byte(`{"kdf":"scrypt","N":1073741824,"r":1024,"p":1024,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"kdf":"scrypt","N":3,"r":1,"p":1,"salt":"","data":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeKeyFile(b)
		if err != nil {
			return
		}
		if err := k.params().check(); err != nil {
			t.Fatalf("accepted parameters %v", err)
		}
		if int64(128)*int64(k.N)*int64(k.R) > maxScryptMemory {
			t.Fatalf("accepted N=%d r=%d", k.N, k.R)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-06T07:14:45.691629243Z","tree":"c1d773f18b2fe4e2386e3aaf9b08f2544fd2e0d8654351fc6fdebd7e567f6c93","paths":["/tmp/imp/src"],"hostname":"h1","username":"root","tags":["t1"]}`))
	f.Add([]byte(`{"time":"2026-12-06T07:14:45Z","tree":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if s.Tree == nil || s.Time.IsZero() {
			t.Fatal("accepted a snapshot without tree or time")
		}
	})
}

// FuzzOpen feeds sealed payloads and the unpacked-file decoder: a wrong
// MAC must be refused before decryption, and decompression stays within
// its cap.
func FuzzOpen(f *testing.F) {
	k, err := newKey(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 16))
	if err != nil {
		f.Fatal(err)
	}
	iv := bytes.Repeat([]byte{9}, ivSize)
	f.Add(k.seal(iv, []byte(`{"version":2,"id":"x","chunker_polynomial":"1"}`)))
	enc, _ := zstd.NewWriter(nil)
	f.Add(k.seal(iv, append([]byte{2}, enc.EncodeAll([]byte(seedIndex), nil)...)))
	f.Add(k.seal(iv, append([]byte{2}, enc.EncodeAll(make([]byte, 1<<20), nil)...)))
	f.Add([]byte("short"))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<20))
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	f.Fuzz(func(t *testing.T, sealed []byte) {
		plain, err := k.open(nil, sealed)
		if err != nil {
			return
		}
		if len(plain) != len(sealed)-overhead {
			t.Fatalf("plaintext of %d bytes from %d sealed", len(plain), len(sealed))
		}
		out, err := unpack(dec, plain)
		if err == nil && len(out) > 1<<20 && plain[0] == 2 {
			t.Fatalf("decompressed %d bytes past the cap", len(out))
		}
		if err == nil {
			_, _ = decodeConfig(out)
		}
	})
}

// A forged MAC is refused, a genuine one accepted.
func TestOpenMAC(t *testing.T) {
	k, err := newKey(bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16), bytes.Repeat([]byte{3}, 16))
	if err != nil {
		t.Fatal(err)
	}
	sealed := k.seal(bytes.Repeat([]byte{7}, ivSize), []byte("plaintext"))
	if p, err := k.open(nil, sealed); err != nil || string(p) != "plaintext" {
		t.Fatalf("open = %q, %v", p, err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := k.open(nil, bad); err != errMAC {
			t.Fatalf("byte %d changed: err = %v, want the MAC error", i, err)
		}
	}
}

// Parameters of a planted key file are refused before any derivation.
func TestScryptBounds(t *testing.T) {
	salt := make([]byte, 32)
	for _, p := range []scryptParams{
		{N: 1 << 30, R: 8, P: 1, Salt: salt},
		{N: 1 << 20, R: 8, P: 1, Salt: salt}, // 1 GiB
		{N: 1 << 16, R: 8, P: 64, Salt: salt},
		{N: 1000, R: 8, P: 1, Salt: salt},
		{N: 1 << 15, R: 8, P: 1, Salt: nil},
	} {
		if _, err := p.derive([]byte("pw")); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := (scryptParams{N: 1 << 15, R: 8, P: 4, Salt: salt}).check(); err != nil {
		t.Errorf("restic's default refused: %v", err)
	}
}

var _ = importer.ID{}
