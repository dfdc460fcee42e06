package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// TestDataSegments saves chunks from several goroutines, as file workers
// do, and checks how they were grouped: every data segment within its
// target (half a pack, at most groupTargetData) unless one blob is larger,
// segments filled before a new one is opened, and every blob readable
// after Flush, from this repository and from a fresh Open.
func TestDataSegments(t *testing.T) {
	tests := []struct {
		name     string
		packSize int
		sizes    []int // chunk sizes, cycled
	}{
		{"default pack", 4 << 20, []int{300 << 10, 512 << 10, 700 << 10, 1 << 20}},
		{"small pack", 1 << 20, []int{100 << 10, 300 << 10, 600 << 10}},
		{"larger than target", 4 << 20, []int{3 << 20, 10 << 10, 10 << 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.PackSize = tc.packSize
			r, dir := createTestRepo(t, cfg)
			defer r.Close()
			target := min(groupTargetData, tc.packSize/2)
			const workers, perWorker = 4, 6
			var mu sync.Mutex
			saved := map[ID][]byte{}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(uint64(w), 1))
					for i := range perWorker {
						// Random words between runs of text: compressible,
						// and every chunk distinct.
						b := make([]byte, tc.sizes[(w+i)%len(tc.sizes)])
						for j := 0; j+64 <= len(b); j += 64 {
							binary.LittleEndian.PutUint64(b[j:], rnd.Uint64())
							copy(b[j+8:j+64], "hostd groups chunks into segments of several MiB ...")
						}
						id, _, err := r.SaveBlob(ctx, DataBlob, b)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						saved[id] = b
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			type segKey struct {
				pack ID
				off  uint32
			}
			segs := map[segKey][]PackBlob{}
			for pack, blobs := range r.Index().Packs() {
				for _, b := range blobs {
					if b.Type == DataBlob {
						k := segKey{pack, b.Offset}
						segs[k] = append(segs[k], b)
					}
				}
			}
			if len(segs) == 0 {
				t.Fatal("no data segments")
			}
			shared := 0
			for k, blobs := range segs {
				raw := blobs[0].RawLength
				if blobs[0].SegmentRaw > 0 {
					raw = blobs[0].SegmentRaw
				}
				if len(blobs) > 1 {
					shared++
					if int(raw) > target {
						t.Errorf("segment at %s+%d: %d bytes of %d blobs, over the target %d", k.pack.Short(), k.off, raw, len(blobs), target)
					}
				}
			}
			if tc.name != "larger than target" && shared == 0 {
				t.Errorf("no segment holds more than one chunk: %d segments", len(segs))
			}
			r2, err := Open(ctx, backend.NewLocal(dir), []byte("pw"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			for id, want := range saved {
				for _, repo := range []*Repository{r, r2} {
					got, err := repo.LoadBlob(ctx, BlobHandle{Type: DataBlob, ID: id}, nil)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("blob %s: %v, equal %v", id.Short(), err, bytes.Equal(got, want))
					}
				}
			}
			if got := len(saved); got != workers*perWorker {
				t.Fatalf("%d distinct blobs saved, want %d", got, workers*perWorker)
			}
		})
	}
}

func TestBufList(t *testing.T) {
	l := newBufList(1<<20, 2)
	a, b, c := l.get(), l.get(), l.get()
	for i, buf := range [][]byte{a, b, c} {
		if len(buf) != 0 || cap(buf) != 1<<20 {
			t.Fatalf("buffer %d: len %d cap %d", i, len(buf), cap(buf))
		}
		buf = append(buf, bytes.Repeat([]byte{byte(i)}, 1<<20)...) // writable, whole
		_ = buf
	}
	l.put(a)
	l.put(b)
	l.put(c) // beyond keep: unmapped
	if len(l.free) != 2 || len(l.ours) != 2 {
		t.Fatalf("free %d, mapped %d; want 2 and 2", len(l.free), len(l.ours))
	}
	if got := l.get(); &got[:1][0] != &b[:1][0] {
		t.Fatal("the last buffer put back is not reused first")
	}
	// Buffers the list did not map are left alone, whatever their size.
	foreign := make([]byte, 0, 1<<20)
	l.put(foreign)
	l.put(make([]byte, 10))
	if len(l.free) != 1 {
		t.Fatalf("foreign buffers kept: %d free", len(l.free))
	}
	l.release()
	if len(l.free) != 0 || len(l.ours) != 1 { // one still out (b)
		t.Fatalf("after release: free %d, mapped %d", len(l.free), len(l.ours))
	}
	l.put(b[:0]) // comes back after release: unmapped, not kept
	if len(l.free) != 0 || len(l.ours) != 0 {
		t.Fatalf("after late put: free %d, mapped %d", len(l.free), len(l.ours))
	}
}

// TestCompressionProbe checks which data segments are compressed whole
// (samplesCompress): random data is stored as it is without a
// compression buffer being written, and a segment with enough
// compressible data to pass the 1/32 rule is compressed wherever that
// data lies, between the probe's slices too.
func TestCompressionProbe(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	line := []byte("the quick brown fox jumps over the lazy dog\n")
	// withText is a random segment holding n bytes of text at offset at.
	withText := func(at, n int) []byte {
		b := random(groupTargetData)
		copy(b[at:at+n], bytes.Repeat(line, n/len(line)+1))
		return b
	}
	step := (groupTargetData - probeLen) / (probeSlices - 1)
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"random segment", random(groupTargetData), false},
		{"text segment", withText(0, groupTargetData), true},
		{"text at the start", withText(0, 256<<10), true},
		{"text in the middle", withText(groupTargetData/2, 256<<10), true},
		{"text at the end", withText(groupTargetData-256<<10, 256<<10), true},
		// Text from the end of one slice to the start of the next but
		// one: the probe sees it in one slice only.
		{"text between slices", withText(3*step+probeLen, 2*step-probeLen), true},
		{"small random blob", random(probeMin), false}, // compressed whole, not kept
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newTestRepo(t)
			defer r.Close()
			payload, tmp, compressed := r.compressBlob(tc.data)
			if compressed != tc.want {
				t.Fatalf("compressed = %v, want %v", compressed, tc.want)
			}
			if !compressed {
				if tmp != nil || !bytes.Equal(payload, tc.data) {
					t.Fatal("an uncompressed segment is not the data itself")
				}
				if len(tc.data) > probeMin && len(r.compBufs.ours) != 0 {
					t.Fatalf("random segment: %d compression buffers mapped", len(r.compBufs.ours))
				}
				return
			}
			if len(payload) >= len(tc.data)-len(tc.data)/32 {
				t.Fatalf("compressed to %d of %d bytes", len(payload), len(tc.data))
			}
			r.compBufs.put(tmp)
		})
	}
}
