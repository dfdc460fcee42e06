package repository

import (
	"context"
	"crypto/rand"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// unstaged is a local directory seen as storage that does not stage
// writes (object storage, REST, SFTP): Flush's path for those. With
// failAt set, the failAt-th pack saved fails.
type unstaged struct {
	backend.Backend
	failAt int64
	packs  atomic.Int64
}

func (u *unstaged) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if h.Type == backend.Pack && u.packs.Add(1) == u.failAt {
		return errors.New("injected failure")
	}
	return u.Backend.Save(ctx, h, data)
}

// The index files Flush writes on storage that does not stage writes
// name every pack stored and no other: with few packs (one index file,
// prepared while the last packs upload), with more packs than make an
// index file on their own (one written meanwhile), with a pack that
// fails to upload (the index names the packs that were stored), and
// with the last pack written as two.
func TestFlushIndexesEveryPack(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		blobs     int
		failAt    int64
		packSize  int
		wantPacks int // 0: any
	}{
		{"few packs", 12, 0, 1 << 16, 0},
		{"many packs", 80, 0, 1 << 16, 0},
		{"a pack fails", 12, 2, 1 << 16, 0},
		// One pack of two segments, over half the pack size, when the
		// backup ends: written as two packs at once.
		{"last pack split", 40, 0, 2 << 20, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &unstaged{Backend: backend.NewLocal(t.TempDir()), failAt: tc.failAt}
			if _, ok := backend.Backend(be).(backend.Stager); ok {
				t.Fatal("test backend stages writes")
			}
			cfg := DefaultConfig()
			cfg.PackSize = tc.packSize
			r, err := Create(ctx, be, []byte("pw"), cfg, crypto.NewKDFParams(1, 64, 1), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range tc.blobs {
				b := make([]byte, 40<<10)
				_, _ = rand.Read(b)
				if _, _, err := r.SaveBlob(ctx, DataBlob, b); err != nil && tc.failAt == 0 {
					t.Fatal(err)
				}
			}
			ferr := r.Flush(ctx)
			if (ferr != nil) != (tc.failAt != 0) {
				t.Fatalf("flush: %v", ferr)
			}
			saved := r.SavedPacks()
			r.Close()
			stored, err := (&Repository{be: be}).List(ctx, backend.Pack)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := Open(ctx, be, []byte("pw"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			indexed := r2.Index().Packs()
			if len(indexed) != len(stored) || len(saved) != len(stored) {
				t.Fatalf("%d packs stored, %d saved, %d indexed", len(stored), len(saved), len(indexed))
			}
			for id, bs := range saved {
				if _, ok := stored[id]; !ok {
					t.Errorf("pack %s indexed but not stored", id.Short())
				}
				for _, b := range bs {
					if _, err := r2.LoadBlob(ctx, b.BlobHandle, nil); err != nil {
						t.Errorf("blob %s: %v", b.ID.Short(), err)
					}
				}
			}
			if tc.wantPacks != 0 && len(stored) != tc.wantPacks {
				t.Errorf("%d packs stored, want %d", len(stored), tc.wantPacks)
			}
			if tc.failAt == 0 && tc.wantPacks == 0 && len(stored) < 4 {
				t.Errorf("only %d packs: the test needs several", len(stored))
			}
			t.Logf("%d packs, %d index files", len(stored), len(r2.IndexFiles()))
		})
	}
}
