package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

func newTestRepo(t *testing.T) (*Repository, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.PackSize = 1 << 16
	return createTestRepo(t, cfg)
}

// createTestRepo creates a repository with cfg (passphrase "pw", a cheap
// KDF) in a temporary directory.
func createTestRepo(t *testing.T, cfg Config) (*Repository, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := Create(context.Background(), backend.NewLocal(dir), []byte("pw"), cfg, crypto.NewKDFParams(1, 64, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func TestBlobRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, dir := newTestRepo(t)
	random := make([]byte, 200<<10)
	_, _ = rand.Read(random)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("x")},
		{"compressible", bytes.Repeat([]byte("abc"), 100000)},
		{"incompressible", random},
	}
	ids := map[string]ID{}
	for _, tc := range tests {
		id, isNew, err := r.SaveBlob(ctx, DataBlob, tc.data)
		if err != nil || !isNew {
			t.Fatalf("%s: save %v new=%v", tc.name, err, isNew)
		}
		if _, again, _ := r.SaveBlob(ctx, DataBlob, tc.data); again {
			t.Fatalf("%s: stored twice", tc.name)
		}
		ids[tc.name] = id
		// Each blob in a segment of its own: compression is decided
		// per segment.
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r2, err := Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		got, err := r2.LoadBlob(ctx, BlobHandle{Type: DataBlob, ID: ids[tc.name]}, nil)
		if err != nil || !bytes.Equal(got, tc.data) {
			t.Fatalf("%s: load %v equal=%v", tc.name, err, bytes.Equal(got, tc.data))
		}
	}
	// Compression happened for the compressible blob only.
	loc, _ := r2.Index().Lookup(BlobHandle{ID: ids["compressible"]})
	rnd, _ := r2.Index().Lookup(BlobHandle{ID: ids["incompressible"]})
	if !loc.Compressed || loc.Length > 10000 || rnd.Compressed {
		t.Fatalf("compression flags: %+v %+v", loc, rnd)
	}
}

func TestNothingReadableWithoutKey(t *testing.T) {
	ctx := context.Background()
	r, dir := newTestRepo(t)
	secret := []byte("a very recognisable secret string in the backup")
	if _, _, err := r.SaveBlob(ctx, DataBlob, bytes.Repeat(secret, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Tree: ID{1}, Paths: []string{"/secret-path-name"}, Hostname: "secret-host"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, needle := range [][]byte{secret, []byte("secret-path-name"), []byte("secret-host")} {
		if grepDir(t, dir, needle) {
			t.Fatalf("%q found in plaintext in the repository", needle)
		}
	}
}

func grepDir(t *testing.T, dir string, needle []byte) bool {
	t.Helper()
	found := false
	_ = walkFiles(dir, func(b []byte) {
		if bytes.Contains(b, needle) {
			found = true
		}
	})
	return found
}

// Repositories of format versions 1 (XChaCha20-Poly1305) and 2
// (AES-256-GCM) stay readable and writable, and keep one blob per segment
// so older binaries can still read them; new ones are version 3, which
// groups small blobs into shared segments.
func TestVersions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		version  int
		cipher   crypto.Cipher
		overhead int
		grouped  bool
	}{
		{VersionXChaCha, crypto.XChaCha20Poly1305, crypto.Overhead, false},
		{VersionAESGCM, crypto.AES256GCM, crypto.MinOverhead, false},
		{VersionGrouped, crypto.AES256GCM, crypto.MinOverhead, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("version", tc.version), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Version = tc.version
			r, dir := createTestRepo(t, cfg)
			blobs := [][]byte{bytes.Repeat([]byte("hostd "), 1000), []byte("a small file\n"), {}}
			var ids []ID
			for _, data := range blobs {
				id, _, err := r.SaveBlob(ctx, DataBlob, data)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r2, err := Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if r2.Config().Version != tc.version || r2.Key().Cipher != tc.cipher {
				t.Fatalf("reopened as version %d, cipher %s", r2.Config().Version, r2.Key().Cipher)
			}
			var locs []Location
			for i, id := range ids {
				h := BlobHandle{Type: DataBlob, ID: id}
				loc, _ := r2.Index().Lookup(h)
				locs = append(locs, loc)
				got, err := r2.LoadBlob(ctx, h, nil)
				if err != nil || !bytes.Equal(got, blobs[i]) {
					t.Fatalf("load blob %d: %v", i, err)
				}
			}
			if shared := locs[0].Offset == locs[1].Offset; shared != tc.grouped {
				t.Fatalf("small blobs share a segment: %v, want %v", shared, tc.grouped)
			}
			loc := locs[0]
			sealed, err := r2.Backend().Load(ctx, backend.Handle{Type: backend.Pack, Name: loc.Pack.String()}, int64(loc.Offset), int(loc.Length))
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := r2.Key().Open(nil, sealed); err != nil || len(sealed)-len(plain) != tc.overhead {
				t.Fatalf("stored segment: %v, overhead %d, want %d", err, len(sealed)-len(plain), tc.overhead)
			}
			// The pack header agrees with the index, in either format.
			size, err := r2.Backend().Stat(ctx, backend.Handle{Type: backend.Pack, Name: loc.Pack.String()})
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := r2.LoadPackHeader(ctx, loc.Pack, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range hdr {
				if l, _ := r2.Index().Lookup(b.BlobHandle); l != b.Location(loc.Pack) {
					t.Fatalf("header %+v, index %+v", b.Location(loc.Pack), l)
				}
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Version = 4
	if _, err := Create(ctx, backend.NewLocal(t.TempDir()), []byte("pw"), cfg, crypto.NewKDFParams(1, 64, 1), Options{}); err == nil {
		t.Fatal("version 4 accepted")
	}
}

// The index refuses blobs placed outside their segment.
func TestDecodeIndexSegments(t *testing.T) {
	const pack = `"0700000000000000000000000000000000000000000000000000000000000000"`
	const blob = `"0100000000000000000000000000000000000000000000000000000000000000"`
	tests := []struct {
		name  string
		entry string
		ok    bool
	}{
		{"own segment", `"offset":0,"length":40,"raw_length":20`, true},
		{"shared", `"offset":0,"length":40,"raw_length":10,"inner":20,"segment_raw":30`, true},
		{"past the end", `"offset":0,"length":40,"raw_length":20,"inner":15,"segment_raw":30`, false},
		{"inner without segment", `"offset":0,"length":40,"raw_length":20,"inner":15`, false},
		{"segment too large", `"offset":0,"length":40,"raw_length":20,"segment_raw":4294967295`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js := `{"version":1,"packs":[{"id":` + pack + `,"blobs":[{"id":` + blob + `,` + tc.entry + `}]}]}`
			_, err := DecodeIndex([]byte(js))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeIndex: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
