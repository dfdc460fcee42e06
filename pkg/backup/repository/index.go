package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sort"
	"sync"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Location says where a blob is stored.
type Location struct {
	Pack       ID
	Offset     uint32
	Length     uint32
	RawLength  uint32
	Compressed bool
	Inner      uint32 // position of the blob in its segment's plaintext
	SegmentRaw uint32 // length of the segment's plaintext
}

type indexEntry struct {
	pack       uint32 // position in Index.packs
	offset     uint32
	length     uint32
	rawLength  uint32
	compressed bool
	inner      uint32
	segRaw     uint32
}

// Index maps blobs to the packs holding them. Safe for concurrent use.
type Index struct {
	mu      sync.RWMutex
	packs   []ID
	packPos map[ID]uint32
	blobs   map[BlobHandle]indexEntry
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packPos: map[ID]uint32{}, blobs: map[BlobHandle]indexEntry{}}
}

// AddPack records the blobs of pack. A blob already known keeps its
// first location.
func (x *Index) AddPack(pack ID, blobs []PackBlob) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.packPos[pack]
	if !ok {
		p = uint32(len(x.packs))
		x.packs = append(x.packs, pack)
		x.packPos[pack] = p
	}
	for _, b := range blobs {
		if _, ok := x.blobs[b.BlobHandle]; ok {
			continue
		}
		x.blobs[b.BlobHandle] = indexEntry{pack: p, offset: b.Offset, length: b.Length, rawLength: b.RawLength, compressed: b.Compressed, inner: b.Inner, segRaw: b.SegmentRaw}
	}
}

// Has reports whether h is indexed.
func (x *Index) Has(h BlobHandle) bool {
	x.mu.RLock()
	_, ok := x.blobs[h]
	x.mu.RUnlock()
	return ok
}

// Lookup returns where h is stored.
func (x *Index) Lookup(h BlobHandle) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.blobs[h]
	if !ok {
		return Location{}, false
	}
	return Location{Pack: x.packs[e.pack], Offset: e.offset, Length: e.length, RawLength: e.rawLength, Compressed: e.compressed, Inner: e.inner, SegmentRaw: e.segRaw}, true
}

// HasPack reports whether any indexed blob lives in pack.
func (x *Index) HasPack(pack ID) bool {
	x.mu.RLock()
	_, ok := x.packPos[pack]
	x.mu.RUnlock()
	return ok
}

// Len returns the number of indexed blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// Packs returns every pack with the blobs the index places in it.
func (x *Index) Packs() map[ID][]PackBlob {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[ID][]PackBlob, len(x.packs))
	for _, p := range x.packs {
		out[p] = nil
	}
	for h, e := range x.blobs {
		p := x.packs[e.pack]
		out[p] = append(out[p], PackBlob{BlobHandle: h, Offset: e.offset, Length: e.length, RawLength: e.rawLength, Compressed: e.compressed, Inner: e.inner, SegmentRaw: e.segRaw})
	}
	for _, bs := range out {
		sort.Slice(bs, func(i, j int) bool {
			if bs[i].Offset != bs[j].Offset {
				return bs[i].Offset < bs[j].Offset
			}
			if bs[i].Inner != bs[j].Inner {
				return bs[i].Inner < bs[j].Inner
			}
			// Only a damaged index places two blobs at one place; the
			// order stays deterministic anyway.
			if bs[i].Type != bs[j].Type {
				return bs[i].Type < bs[j].Type
			}
			return bytes.Compare(bs[i].ID[:], bs[j].ID[:]) < 0
		})
	}
	return out
}

// indexFile is the JSON of an index file (before compression and
// encryption).
type indexFile struct {
	Version int             `json:"version"`
	Packs   []indexFilePack `json:"packs"`
}

type indexFilePack struct {
	ID    ID              `json:"id"`
	Blobs []indexFileBlob `json:"blobs"`
}

type indexFileBlob struct {
	ID         ID       `json:"id"`
	Type       BlobType `json:"type"`
	Offset     uint32   `json:"offset"`
	Length     uint32   `json:"length"`
	RawLength  uint32   `json:"raw_length"`
	Compressed bool     `json:"compressed,omitempty"`
	// A blob sharing its segment with others: its place in the segment's
	// plaintext and that plaintext's length. Omitted for a blob that is
	// its segment (inner 0, segment_raw = raw_length).
	Inner      uint32 `json:"inner,omitempty"`
	SegmentRaw uint32 `json:"segment_raw,omitempty"`
}

// EncodeIndex returns the JSON of an index file listing packs, sorted by
// pack ID: the bytes encoding/json gives for an indexFile, written without
// reflection (the last index of a backup is written after its last pack,
// while nothing else runs).
func EncodeIndex(packs map[ID][]PackBlob) ([]byte, error) {
	ids := make([]ID, 0, len(packs))
	n := 0
	for id, bs := range packs {
		ids = append(ids, id)
		n += len(bs)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	b := make([]byte, 0, 32+len(packs)*(2*len(ID{})+24)+n*(2*len(ID{})+150))
	b = append(b, `{"version":1,"packs":`...)
	if len(ids) == 0 {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendID(b, &id)
		b = append(b, `,"blobs":`...)
		bs := packs[id]
		if len(bs) == 0 {
			b = append(b, "null}"...)
			continue
		}
		b = append(b, '[')
		for j := range bs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendIndexBlob(b, &bs[j])
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...), nil
}

// appendIndexBlob appends the indexFileBlob of pb: inner and segment_raw
// only for a blob that shares its segment.
func appendIndexBlob(b []byte, pb *PackBlob) []byte {
	b = append(b, `{"id":`...)
	b = appendID(b, &pb.ID)
	b = appendUint(b, `,"type":`, uint64(pb.Type))
	b = appendUint(b, `,"offset":`, uint64(pb.Offset))
	b = appendUint(b, `,"length":`, uint64(pb.Length))
	b = appendUint(b, `,"raw_length":`, uint64(pb.RawLength))
	if pb.Compressed {
		b = append(b, `,"compressed":true`...)
	}
	if pb.Inner != 0 || pb.SegmentRaw != pb.RawLength {
		b = appendUintField(b, `,"inner":`, uint64(pb.Inner))
		b = appendUintField(b, `,"segment_raw":`, uint64(pb.SegmentRaw))
	}
	return append(b, '}')
}

// DecodeIndex parses the JSON of an index file.
func DecodeIndex(b []byte) (map[ID][]PackBlob, error) {
	f, ok := decodeIndexFast(b)
	if !ok {
		f = indexFile{}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("decode index: %w", err)
		}
	}
	return indexPacks(f)
}

// indexPacks checks the index file f and returns its packs' blobs.
func indexPacks(f indexFile) (map[ID][]PackBlob, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("decode index: unsupported version %d", f.Version)
	}
	out := make(map[ID][]PackBlob, len(f.Packs))
	for _, p := range f.Packs {
		bs := make([]PackBlob, 0, len(p.Blobs))
		for i, b := range p.Blobs {
			if b.Type > TreeBlob {
				return nil, fmt.Errorf("decode index: pack %s blob %d: bad type %d", p.ID.Short(), i, b.Type)
			}
			if b.Length == 0 || b.Length > maxSealedSegment || uint64(b.Offset)+uint64(b.Length) > 1<<32-1 {
				return nil, fmt.Errorf("decode index: pack %s blob %d: bad extent %d+%d", p.ID.Short(), i, b.Offset, b.Length)
			}
			if b.SegmentRaw == 0 {
				if b.Inner != 0 {
					return nil, fmt.Errorf("decode index: pack %s blob %d: inner offset without segment length", p.ID.Short(), i)
				}
				b.SegmentRaw = b.RawLength
			}
			if b.SegmentRaw > maxSegmentRaw || uint64(b.Inner)+uint64(b.RawLength) > uint64(b.SegmentRaw) {
				return nil, fmt.Errorf("decode index: pack %s blob %d: bad place %d+%d in segment of %d", p.ID.Short(), i, b.Inner, b.RawLength, b.SegmentRaw)
			}
			bs = append(bs, PackBlob{BlobHandle: BlobHandle{Type: b.Type, ID: b.ID}, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Compressed: b.Compressed, Inner: b.Inner, SegmentRaw: b.SegmentRaw})
		}
		out[p.ID] = append(out[p.ID], bs...)
	}
	return out, nil
}

// errNoIndex marks blobs missing from the index.
var errNoIndex = errors.New("blob not in index")

// Index returns the in-memory index.
func (r *Repository) Index() *Index { return r.idx }

// IndexErrors returns index files that could not be read at load time.
func (r *Repository) IndexErrors() map[ID]error { return r.indexErrs }

// IndexFiles returns the index files loaded.
func (r *Repository) IndexFiles() []ID {
	out := make([]ID, 0, len(r.indexFiles))
	for id := range r.indexFiles {
		out = append(out, id)
	}
	return out
}

// indexReaders is how many index files are read at once. A file read
// waits, whole, until a decoder takes it, so at most this many wait.
const indexReaders = 4

// sealedFile is a repository file read whole: not yet checked against
// its name nor decrypted.
type sealedFile struct {
	id   ID
	data []byte
	err  error
}

// fileFetch reads the files of one type ahead of their decryption.
type fileFetch struct {
	files chan sealedFile // closed once every listed file was sent
	err   error           // of the listing; read once files is closed
}

// fetchFiles lists the files of type t that skip does not name and reads
// them, indexReaders at once (each within backend.FileLimit), sending
// each on the returned fetch's files. Nothing needs the key: Open reads
// the index files while the key is derived. The reads stop when ctx is
// done; the caller reads files until it is closed.
func fetchFiles(ctx context.Context, be backend.Backend, t backend.FileType, skip map[ID]bool) *fileFetch {
	f := &fileFetch{files: make(chan sealedFile)}
	go func() {
		defer close(f.files)
		seen := map[ID]bool{}
		var ids []ID
		err := be.List(ctx, t, func(name string, _ int64) error {
			if id, err := crypto.ParseID(name); err == nil && !skip[id] && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			f.err = fmt.Errorf("list %s: %w", t, err)
			return
		}
		f.read(ctx, be, t, ids)
	}()
	return f
}

// readFiles reads the files ids of type t as fetchFiles does.
func readFiles(ctx context.Context, be backend.Backend, t backend.FileType, ids []ID) *fileFetch {
	f := &fileFetch{files: make(chan sealedFile)}
	go func() {
		defer close(f.files)
		f.read(ctx, be, t, ids)
	}()
	return f
}

// read reads ids, indexReaders at once, and sends them on f.files.
func (f *fileFetch) read(ctx context.Context, be backend.Backend, t backend.FileType, ids []ID) {
	next := make(chan ID)
	var wg sync.WaitGroup
	for range min(indexReaders, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				b, err := backend.LoadFile(ctx, be, backend.Handle{Type: t, Name: id.String()}, backend.FileLimit(t))
				select {
				case f.files <- sealedFile{id: id, data: b, err: err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
feed:
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}

// drain discards what f still reads, until its reads end.
func (f *fileFetch) drain() {
	for range f.files {
	}
}

// LoadIndex reads every index file not loaded yet. Unreadable index
// files are recorded (see IndexErrors) and their packs indexed from the
// pack headers, so a damaged index never hides intact data.
func (r *Repository) LoadIndex(ctx context.Context) error {
	r.mu.Lock()
	loaded := maps.Clone(r.indexFiles)
	r.mu.Unlock()
	return r.addIndexFiles(ctx, fetchFiles(ctx, r.be, backend.Index, loaded))
}

// addIndexFiles checks, decrypts and decodes the index files f reads,
// GOMAXPROCS at once, and adds them to the index.
func (r *Repository) addIndexFiles(ctx context.Context, f *fileFetch) error {
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sf := range f.files {
				h := backend.Handle{Type: backend.Index, Name: sf.id.String()}
				var packs map[ID][]PackBlob
				b, err := r.openFile(h, sf.data, sf.err)
				if err == nil {
					packs, err = DecodeIndex(b)
				}
				if err != nil {
					if ctx.Err() != nil {
						continue
					}
					r.mu.Lock()
					r.indexErrs[sf.id] = err
					r.mu.Unlock()
					r.log.Warn("index file unreadable, indexing packs from their headers", "index", sf.id.Short(), "err", err)
					continue
				}
				for p, bs := range packs {
					r.idx.AddPack(p, bs)
				}
				r.mu.Lock()
				r.indexFiles[sf.id] = true
				r.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.err != nil {
		return f.err
	}
	if len(r.indexErrs) > 0 {
		if _, err := r.AdoptPacks(ctx); err != nil {
			return err
		}
	}
	return nil
}

// RefreshIndex brings the index to the index files the storage lists
// now, with one listing: those added since they were loaded are read,
// and if any loaded one is gone (prune rewrote the index), the index is
// read again. Called once a lock is confirmed, it makes the index that
// Open read before the lock the index under the lock: no exclusive
// operation can change it any more.
func (r *Repository) RefreshIndex(ctx context.Context) error {
	ids, err := r.List(ctx, backend.Index)
	if err != nil {
		return err
	}
	r.mu.Lock()
	gone := false
	for id := range r.indexFiles {
		if _, ok := ids[id]; !ok {
			gone = true
		}
	}
	var added []ID
	for id := range ids {
		if _, bad := r.indexErrs[id]; !r.indexFiles[id] && !bad {
			added = append(added, id)
		}
	}
	r.mu.Unlock()
	if gone {
		r.log.Info("index files changed since the repository was opened, reading the index again")
		return r.ReloadIndex(ctx)
	}
	if len(added) == 0 {
		return nil
	}
	return r.addIndexFiles(ctx, readFiles(ctx, r.be, backend.Index, added))
}

// ReloadIndex drops the in-memory index and reads the index files again
// (after prune rewrote them).
func (r *Repository) ReloadIndex(ctx context.Context) error {
	r.idx = NewIndex()
	r.indexFiles = map[ID]bool{}
	r.indexErrs = map[ID]error{}
	return r.LoadIndex(ctx)
}

// AdoptPacks indexes (in memory, and in the next index file written) every
// pack that no index file names: the packs of an interrupted backup, or
// those of a damaged index file. It returns how many packs it adopted.
func (r *Repository) AdoptPacks(ctx context.Context) (int, error) {
	packs, err := r.List(ctx, backend.Pack)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, size := range packs {
		if r.idx.HasPack(id) {
			continue
		}
		blobs, err := r.LoadPackHeader(ctx, id, size)
		if err != nil {
			r.log.Warn("pack not indexed and unreadable, prune removes it", "pack", id.Short(), "err", err)
			continue
		}
		r.idx.AddPack(id, blobs)
		r.mu.Lock()
		r.unindexed[id] = blobs
		r.mu.Unlock()
		n++
	}
	return n, nil
}

// WriteIndex stores one index file listing packs and returns its ID.
func (r *Repository) WriteIndex(ctx context.Context, packs map[ID][]PackBlob) (ID, error) {
	b, err := EncodeIndex(packs)
	if err != nil {
		return ID{}, err
	}
	id, err := r.SaveFile(ctx, backend.Index, b)
	if err != nil {
		return id, fmt.Errorf("save index: %w", err)
	}
	return id, nil
}

// writeSealedIndex writes sealed, the index file of packs that Flush
// prepared while they were written, if they are exactly the packs saved
// and not indexed yet; else (an index file was written meanwhile) it
// writes the index of those as writeIndex does.
func (r *Repository) writeSealedIndex(ctx context.Context, packs map[ID][]PackBlob, sealed []byte) error {
	r.indexMu.Lock()
	r.mu.Lock()
	same := len(packs) == len(r.unindexed)
	for id := range packs {
		if _, ok := r.unindexed[id]; !ok {
			same = false
		}
	}
	if same {
		r.unindexed = map[ID][]PackBlob{}
	}
	r.mu.Unlock()
	if !same {
		r.indexMu.Unlock()
		return r.writeIndex(ctx)
	}
	defer r.indexMu.Unlock()
	id := fileID(sealed)
	err := r.be.Save(context.WithoutCancel(ctx), backend.Handle{Type: backend.Index, Name: id.String()}, sealed)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		maps.Copy(r.unindexed, packs)
		return fmt.Errorf("save index: %w", err)
	}
	r.indexFiles[id] = true
	return nil
}

// writeIndex writes an index file for the packs saved since the last one.
func (r *Repository) writeIndex(ctx context.Context) error {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	r.mu.Lock()
	packs := r.unindexed
	r.unindexed = map[ID][]PackBlob{}
	r.mu.Unlock()
	if len(packs) == 0 {
		return nil
	}
	b, err := EncodeIndex(packs)
	if err == nil {
		var id ID
		id, err = r.SaveFile(context.WithoutCancel(ctx), backend.Index, b)
		if err == nil {
			r.mu.Lock()
			r.indexFiles[id] = true
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Lock()
	for id, bs := range packs {
		r.unindexed[id] = bs
	}
	r.mu.Unlock()
	return fmt.Errorf("save index: %w", err)
}
