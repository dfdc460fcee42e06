package repository

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/chunker"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Errors callers test with errors.Is.
var (
	ErrNotRepository = errors.New("not a repository (run init first)")
	ErrWrongPassword = errors.New("wrong password or no key found")
)

// uploadSlots is how many full packs may be written concurrently in the
// background. A pack's buffer goes back once its data is written, before
// the wait for the disk, which holds no thread (backend.Stager), so a
// slot costs no memory during that wait. With one slot, a compressor
// that filled a pack waited for the previous pack's fsync: first backups
// of the generated 1 GiB set were 3-5% slower than with fsync(2), with
// two 4-6% faster (medians of five to ten runs on two cores).
const uploadSlots = 2

// Grouping (version 3): blobs are collected, per blob type, into one
// segment of up to the type's target plaintext, and zstd compresses the
// segment as one input. Data segments hold several chunks: zstd finds
// more matches in 2 MiB than in one 512 KiB chunk and runs faster on it
// (Go toolchain tree: 10% more compression throughput, 3.5% smaller;
// 4 MiB gains a little more for 12 MiB more memory). Trees are read one
// by one, so their segments stay small.
const (
	groupTargetData = 2 << 20
	groupTargetTree = 256 << 10
	maxGroupBlobs   = 1024 // within maxPackBlobs
)

// zstdWindow is the encoder's window: one whole data segment, which is
// also zstd -3's window.
const zstdWindow = groupTargetData

// Options tune opening or creating a repository.
type Options struct {
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
	// KeyHint names the key file Open tries first (a name or a unique
	// prefix): the one that opened the repository last time, so that
	// key files planted in the storage cannot use up the budget of key
	// derivations before it. Empty: none; one naming no key file is
	// ignored.
	KeyHint string
	// PrefetchSnapshots reads the snapshot files while the key is
	// derived (at most MaxEarlyFiles of at most EarlyFileLimit bytes):
	// for commands that list the snapshots or resolve "latest". They are
	// checked against their names and decrypted when used.
	PrefetchSnapshots bool
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Repository is an open, unlocked-by-default repository.
type Repository struct {
	be      backend.Backend
	key     *crypto.Key
	keyName string
	cfg     Config
	chunker *chunker.Chunker
	log     *slog.Logger
	now     func() time.Time

	enc *zstd.Encoder
	dec *zstd.Decoder

	idx        *Index
	indexFiles map[ID]bool  // index files loaded
	indexErrs  map[ID]error // index files that could not be read

	mu        sync.Mutex
	cur       *packBuilder
	groups    [TreeBlob + 1]*openGroup // by blob type
	pending   map[BlobHandle]struct{}
	unindexed map[ID][]PackBlob // saved packs not yet in an index file
	saved     map[ID][]PackBlob // every pack saved since Open
	writing   map[ID][]PackBlob // packs sealed and being written
	sealWG    sync.WaitGroup    // packs written in the background not sealed yet
	saveErr   error
	stats     WriteStats
	uploads   chan struct{}  // slots for packs being written in the background
	uploadWG  sync.WaitGroup // packs being written
	// compressing bounds the data segments compressed in the background;
	// compressWG waits for them.
	compressing chan struct{}
	compressWG  sync.WaitGroup
	bufs        sync.Pool  // *[]byte scratch for reading segments
	compBufs    *bufList   // compressed segments
	packBufs    *bufList   // pack buffers
	groupBufs   *bufList   // open data segments
	indexMu     sync.Mutex // serializes index file writes

	segs segmentCache // plaintext of recently read shared segments

	// Files Open read while it derived the key (Options.PrefetchSnapshots
	// and the lock files), sealed, each used once (LoadFile), and the
	// lock files' names as Open listed them (nil: not listed).
	early      map[backend.Handle][]byte
	earlyLocks map[ID]int64
}

// WriteStats counts what was written since Open.
type WriteStats struct {
	Blobs       int
	BytesRaw    int64 // plaintext bytes of new blobs
	BytesStored int64 // bytes of new blobs in packs
	Packs       int
}

func newRepository(be backend.Backend, key *crypto.Key, cfg Config, o Options) (*Repository, error) {
	ch, err := chunker.New(key.Chunker, cfg.Chunker)
	if err != nil {
		return nil, err
	}
	level := cfg.Compression
	if level == 0 {
		level = 1
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),      // blobs are authenticated and hashed already
		zstd.WithWindowSize(zstdWindow), // bounds encoder memory
		zstd.WithLowerEncoderMem(true))  // same output, half the history buffer
	if err != nil {
		return nil, fmt.Errorf("init zstd: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, fmt.Errorf("init zstd: %w", err)
	}
	return &Repository{
		be: be, key: key, cfg: cfg, chunker: ch, log: o.Logger, now: o.Now,
		enc: enc, dec: dec, idx: NewIndex(),
		indexFiles: map[ID]bool{}, indexErrs: map[ID]error{},
		pending: map[BlobHandle]struct{}{}, unindexed: map[ID][]PackBlob{}, saved: map[ID][]PackBlob{},
		writing:     map[ID][]PackBlob{},
		uploads:     make(chan struct{}, uploadSlots),
		compressing: make(chan struct{}, runtime.GOMAXPROCS(0)),
		// One buffer of each per background compression, plus the open
		// segment and the pack being filled or written.
		compBufs:  newBufList(compBufSize, runtime.GOMAXPROCS(0)+1),
		groupBufs: newBufList(groupTargetData, runtime.GOMAXPROCS(0)+2),
		packBufs:  newBufList(cfg.PackSize+packSlack, uploadSlots+1),
		segs:      segmentCache{max: segmentCacheBytes},
	}, nil
}

// Config returns the repository parameters.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// Chunker returns the repository's chunker.
func (r *Repository) Chunker() *chunker.Chunker { return r.chunker }

// Key returns the master key.
func (r *Repository) Key() *crypto.Key { return r.key }

// Stats returns what was written since Open.
func (r *Repository) Stats() WriteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close waits for background pack writes and releases the compressor.
func (r *Repository) Close() error {
	r.compressWG.Wait()
	r.uploadWG.Wait()
	r.compBufs.release()
	r.groupBufs.release()
	r.packBufs.release()
	r.enc.Close()
	r.dec.Close()
	return r.be.Close()
}
