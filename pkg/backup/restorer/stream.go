package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// On object storage and REST servers (backends that hint a pack size
// and read ranges as streams: S3, REST, rclone) a restore reads each pack
// with as few requests as it can and uses the bytes as they arrive:
//
//   - The blobs a restore needs from one pack are read with one ranged
//     GET from the first to the last, reading over gaps of up to
//     streamGap (other snapshots' data, trees) rather than paying for
//     another request; a full restore reads most packs whole, as restic
//     does. RemoteWorkers such streams are read at once.
//   - A stream's bytes are cut, as they arrive, into units: the blobs of
//     one segment, neighbours joined up to slotSize. Each unit is copied
//     into a free slot of a fixed arena (remoteSlots slots of slotSize,
//     an anonymous mapping outside the Go heap) and handed to one of
//     max(4, 2 x GOMAXPROCS) writers, which authenticate, decompress and
//     check each blob and write it to every file that uses it. A reader
//     with no free slot waits, so what is read ahead is bounded by the
//     arena (a unit larger than a slot, one segment of a large chunk, is
//     read into the heap).
//   - Reading starts as soon as the plan is made, while the directories
//     are created; the writers start once they exist (startStreams,
//     finish), so the first round trips overlap that work.
//   - A stream that breaks off (a dropped connection, a body cut short,
//     a server that stops sending for the operation deadline, or a reader
//     that waited that long for a slot) is opened again from the first
//     unit not yet read. After streamRestarts breaks in a row with no
//     unit read in between, the blobs it still held are failed and their
//     files left out (and named), so a server that answers but never
//     delivers cannot keep a restore going.
const (
	RemoteWorkers  = 8
	streamGap      = 4 << 20
	slotSize       = 2 << 20
	remoteSlots    = 16
	streamRestarts = 3
)

// isRemote reports whether repo's backend is object storage or a REST
// server (it hints a pack size for that reason).
func isRemote(repo *repository.Repository) bool {
	_, ok := repo.Backend().(backend.PackSizeHinter)
	return ok
}

// unit is a run of blobs of one pack read into one slot and written by
// one writer: whole segments (the blobs of a segment share its extent).
type unit struct {
	start, end uint32
	blobs      []*blobUse
}

// stream is a run of units of one pack read with one request.
type stream struct {
	pack       repository.ID
	start, end uint32
	units      []unit
}

// planStreams cuts the blobs each pack holds into units and streams.
func planStreams(byPack map[repository.ID][]*blobUse) []stream {
	var streams []stream
	for p, us := range byPack {
		sort.Slice(us, func(i, j int) bool { return us[i].loc.Offset < us[j].loc.Offset })
		var cur stream
		var u unit
		flush := func() {
			if len(u.blobs) > 0 {
				cur.units = append(cur.units, u)
				cur.end = max(cur.end, u.end)
			}
			u = unit{}
		}
		for _, b := range us {
			off, end := b.loc.Offset, b.loc.Offset+b.loc.Length
			switch {
			case len(u.blobs) == 0:
			case off < u.end:
				// The same segment (or one overlapping it): same unit.
			case off == u.end && end-u.start <= slotSize:
			default:
				flush()
			}
			if len(cur.units) > 0 && len(u.blobs) == 0 && off > cur.end && off-cur.end > streamGap {
				streams = append(streams, cur)
				cur = stream{}
			}
			if len(cur.units) == 0 && len(u.blobs) == 0 {
				cur = stream{pack: p, start: off}
			}
			if len(u.blobs) == 0 {
				u.start = off
			}
			u.end = max(u.end, end)
			u.blobs = append(u.blobs, b)
		}
		flush()
		streams = append(streams, cur)
	}
	// Largest first: the last streams to finish are short ones.
	sort.Slice(streams, func(i, j int) bool {
		if a, b := streams[i].end-streams[i].start, streams[j].end-streams[j].start; a != b {
			return a > b
		}
		if streams[i].pack != streams[j].pack {
			return string(streams[i].pack[:]) < string(streams[j].pack[:])
		}
		return streams[i].start < streams[j].start
	})
	return streams
}

// arena is a fixed set of equal slots in one anonymous mapping, handed
// out and back by readers and writers.
type arena struct {
	mem  []byte
	free chan int
}

// newArena maps n slots of size bytes; without a mapping (out of
// address space or mappings) every unit is read into the heap, n at a
// time.
func newArena(n, size int) *arena {
	a := &arena{free: make(chan int, n)}
	if b, err := unix.Mmap(-1, 0, n*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
		a.mem = b
	}
	for i := range n {
		a.free <- i
	}
	return a
}

func (a *arena) close() {
	if a.mem != nil {
		_ = unix.Munmap(a.mem)
		a.mem = nil
	}
}

// get waits for a free slot and returns it with a buffer of n bytes:
// the slot's memory, or the heap's for a unit larger than a slot.
func (a *arena) get(ctx context.Context, n int) (int, []byte, error) {
	select {
	case i := <-a.free:
		if a.mem == nil || n > slotSize {
			return i, make([]byte, n), nil
		}
		return i, a.mem[i*slotSize : i*slotSize+n : i*slotSize+slotSize], nil
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (a *arena) put(i int) { a.free <- i }

// unitJob is a unit read and waiting for a writer.
type unitJob struct {
	u    *unit
	data []byte
	slot int
}

// streamer reads the packs of a remote repository (readers) and hands
// their units to writers, which start writing once ready is closed.
type streamer struct {
	g      *errgroup.Group
	cancel context.CancelFunc
	ready  chan struct{}
	arena  *arena
}

// startStreams starts reading the blobs of byPack from rr: the readers
// fill the arena at once, the writers wait for finish.
func (r *restorer) startStreams(ctx context.Context, rr backend.RangeReader, byPack map[repository.ID][]*blobUse) *streamer {
	streams := planStreams(byPack)
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	st := &streamer{g: g, cancel: cancel, ready: make(chan struct{}), arena: newArena(remoteSlots, slotSize)}
	jobs := make(chan unitJob, remoteSlots)
	var readers sync.WaitGroup
	todo := make(chan *stream)
	for range min(r.opts.Workers, len(streams)) {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			for s := range todo {
				if err := r.readStream(gctx, rr, s, st, jobs); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(todo)
		for i := range streams {
			select {
			case todo <- &streams[i]:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		readers.Wait()
		close(jobs)
		return nil
	})
	for range max(4, 2*runtime.GOMAXPROCS(0)) {
		g.Go(func() error {
			select {
			case <-st.ready:
			case <-gctx.Done():
			}
			w := spanBuffers{dec: r.repo.NewSegmentDecoder()}
			for j := range jobs {
				if gctx.Err() == nil { // stopped: what is left is not written
					r.writeUnit(j, &w)
				}
				st.arena.put(j.slot)
			}
			return nil
		})
	}
	return st
}

// finish lets the writers write and waits until every stream is read
// and written.
func (st *streamer) finish() error {
	close(st.ready)
	err := st.g.Wait()
	st.cancel()
	st.arena.close()
	return err
}

// abort stops the readers and writers before anything was written.
func (st *streamer) abort() {
	st.cancel()
	_ = st.g.Wait()
	st.arena.close()
}

// readStream reads s's units in order from one ranged GET (opened again
// where it broke off; after streamRestarts breaks in a row without a
// unit read, the units left are failed) and hands each to the writers.
func (r *restorer) readStream(ctx context.Context, rr backend.RangeReader, s *stream, st *streamer, jobs chan<- unitJob) error {
	a := st.arena
	h := backend.Handle{Type: backend.Pack, Name: s.pack.String()}
	var body io.ReadCloser
	defer func() {
		if body != nil {
			body.Close()
		}
	}()
	var pos uint32 // the offset body reads next
	restarts := 0
	for i := 0; i < len(s.units); {
		u := &s.units[i]
		if body == nil {
			var err error
			body, err = rr.OpenRange(ctx, h, int64(u.start), int64(s.end-u.start))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return r.unitsFailed(ctx, st, s.units[i:], err)
			}
			pos = u.start
		}
		slot, buf, err := a.get(ctx, int(u.end-u.start))
		if err != nil {
			return err
		}
		if u.start > pos {
			_, err = io.CopyN(io.Discard, body, int64(u.start-pos))
		}
		if err == nil {
			_, err = io.ReadFull(body, buf)
		}
		if err != nil {
			a.put(slot)
			body.Close()
			body = nil
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if restarts++; restarts > streamRestarts {
				return r.unitsFailed(ctx, st, s.units[i:], fmt.Errorf("read pack %s at %d: %w", s.pack.Short(), u.start, err))
			}
			continue
		}
		pos = u.end
		restarts = 0
		select {
		case jobs <- unitJob{u: u, data: buf, slot: slot}:
		case <-ctx.Done():
			a.put(slot)
			return ctx.Err()
		}
		i++
	}
	return nil
}

// writeUnit authenticates, decodes and checks each blob of a unit read
// and writes it to every place that uses it.
func (r *restorer) writeUnit(j unitJob, w *spanBuffers) {
	r.writeBlobs(j.u.blobs, j.u.start, j.data, w)
}

// unitsFailed fails the blobs of us, once the writers may touch files
// (failing a file's last blob finishes it).
func (r *restorer) unitsFailed(ctx context.Context, st *streamer, us []unit, err error) error {
	select {
	case <-st.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err == nil {
		err = errors.New("pack not read")
	}
	for _, u := range us {
		for _, b := range u.blobs {
			r.blobFailed(b, err)
		}
	}
	return nil
}
