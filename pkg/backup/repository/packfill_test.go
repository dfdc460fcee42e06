package repository

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// Packs of many small blobs fill to their size: a pack closes when the
// next segment or its blobs' header would not fit in its buffer, not at
// a fixed number of blobs (maxPackBlobs, which closed the packs of the
// Go tree's small files far below 16 MiB). Every pack stays within the
// pack size plus packSlack, and every blob reads back.
func TestPacksOfSmallBlobsFill(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.PackSize = 4 << 20
	r, dir := createTestRepo(t, cfg)
	rnd := rand.New(rand.NewPCG(3, 4))
	const n = 8000
	blobs := make([][]byte, n)
	for i := range blobs {
		b := make([]byte, 700+rnd.IntN(200)) // incompressible, grouped into segments
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		blobs[i] = b
		if _, _, err := r.SaveBlob(ctx, DataBlob, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	packs := r.SavedPacks()
	most := 0
	for id, bs := range packs {
		most = max(most, len(bs))
		size, err := r.Backend().Stat(ctx, backend.Handle{Type: backend.Pack, Name: id.String()})
		if err != nil {
			t.Fatal(err)
		}
		if size > int64(cfg.PackSize+packSlack) {
			t.Errorf("pack %s: %d bytes, more than the pack size and its slack", id.Short(), size)
		}
	}
	if most <= maxPackBlobs || len(packs) > 2 {
		t.Errorf("%d packs, at most %d blobs in one: want packs of more than %d blobs (about 7 MB of blobs in two 4 MiB packs)", len(packs), most, maxPackBlobs)
	}
	r2, err := Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blobs {
		got, err := r2.LoadBlob(ctx, BlobHandle{Type: DataBlob, ID: r2.key.ID(b)}, nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
}
