package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/chunker"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Errors callers test with errors.Is.
var (
	ErrNotRepository = errors.New("not a repository (run init first)")
	ErrWrongPassword = errors.New("wrong password or no key found")
)

// indexFlushPacks is how many new packs trigger writing an index file, so
// a killed backup leaves most of its packs indexed.
const indexFlushPacks = 16

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

// openGroup is a segment being filled with blobs.
type openGroup struct {
	buf   []byte
	blobs []segBlob
}

// Options tune opening or creating a repository.
type Options struct {
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
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
	adopted    int          // packs indexed from their headers at open

	mu        sync.Mutex
	cur       *packBuilder
	groups    [TreeBlob + 1]*openGroup // by blob type
	pending   map[BlobHandle]struct{}
	unindexed map[ID][]PackBlob // saved packs not yet in an index file
	saved     map[ID][]PackBlob // every pack saved since Open
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

// Create initialises an empty repository in be with a new master key
// wrapped by password.
func Create(ctx context.Context, be backend.Backend, password []byte, cfg Config, kdf crypto.KDFParams, o Options) (*Repository, error) {
	o.defaults()
	if len(password) == 0 {
		return nil, errors.New("init repository: empty password")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
		return nil, fmt.Errorf("init repository %s: already initialised", be.Location())
	}
	key, err := crypto.NewRandomKeyFor(cfg.Cipher())
	if err != nil {
		return nil, err
	}
	if err := be.Create(ctx); err != nil {
		return nil, err
	}
	// Key files without a config are what an interrupted init left:
	// their master key is not this repository's.
	var stale []string
	if err := be.List(ctx, backend.Key, func(name string, _ int64) error {
		stale = append(stale, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	for _, name := range stale {
		if err := be.Remove(ctx, backend.Handle{Type: backend.Key, Name: name}); err != nil {
			return nil, fmt.Errorf("init repository: remove key of an interrupted init: %w", err)
		}
	}
	r, err := newRepository(be, key, cfg, o)
	if err != nil {
		return nil, err
	}
	name, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return nil, err
	}
	r.keyName = name
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The config is written last: a repository without one is not a
	// repository, so a crashed init can simply be repeated.
	if err := be.Save(ctx, backend.Handle{Type: backend.Config}, r.encryptFile(b)); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	return r, nil
}

// Open unlocks the repository in be with password and loads its index.
func Open(ctx context.Context, be backend.Backend, password []byte, o Options) (*Repository, error) {
	o.defaults()
	raw, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Config}, backend.ConfigLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	// The key must also open the config: a key file left by an init that
	// crashed before writing its config wraps another master key.
	var plain []byte
	key, keyName, err := findKey(ctx, be, password, func(k *crypto.Key) bool {
		var derr error
		plain, derr = decryptFile(k, nil, raw)
		return derr == nil
	})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	cfg, err := DecodeConfig(plain)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	if key.Cipher != cfg.Cipher() {
		return nil, fmt.Errorf("open repository %s: key cipher %s does not match repository version %d", be.Location(), key.Cipher, cfg.Version)
	}
	r, err := newRepository(be, key, cfg, o)
	if err != nil {
		return nil, err
	}
	r.keyName = keyName
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return r, nil
}

// MaxKeyFiles is how many key files Open tries: whoever holds the storage
// can add key files, and each costs a key derivation.
const MaxKeyFiles = 32

// findKey tries the key files with password: at most MaxKeyFiles of them
// (the first by name), the cheapest to derive first, so a planted key
// file never delays a genuine one that costs less. A key file that
// cannot be read or decoded, or asks for KDF parameters out of range, is
// skipped (and reported if no key opens) before any derivation.
func findKey(ctx context.Context, be backend.Backend, password []byte, opensConfig func(*crypto.Key) bool) (*crypto.Key, string, error) {
	// The first MaxKeyFiles names, kept sorted while listing, so that
	// millions of planted names cost no memory.
	var names []string
	total := 0
	if err := be.List(ctx, backend.Key, func(name string, _ int64) error {
		total++
		i := sort.SearchStrings(names, name)
		if i >= MaxKeyFiles {
			return nil
		}
		names = slices.Insert(names, i, name)
		if len(names) > MaxKeyFiles {
			names = names[:MaxKeyFiles]
		}
		return nil
	}); err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("no key files: %w", ErrNotRepository)
	}
	kerr := &KeyError{Total: total, Tried: len(names)}
	type candidate struct {
		name string
		kf   *KeyFile
	}
	var cands []candidate
	for _, n := range names {
		b, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Key, Name: n}, backend.KeyLimit)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: n, Err: fmt.Errorf("unreadable: %w", err)})
			continue
		}
		kf, err := DecodeKeyFile(b)
		if err != nil {
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: n, Err: err})
			continue
		}
		cands = append(cands, candidate{n, kf})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].kf.KDF.Work() < cands[j].kf.KDF.Work() })
	unwrapped := false
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		w, err := crypto.DeriveWrappingKey(password, c.kf.KDF)
		if err != nil { // Validate passed in DecodeKeyFile
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: c.name, Err: err})
			continue
		}
		k, err := w.Unwrap(c.kf.Data)
		switch {
		case errors.Is(err, crypto.ErrUnauthenticated):
			kerr.Unauthenticated = append(kerr.Unauthenticated, c.name)
		case err != nil:
			// Authenticated, so written with this password, yet not a
			// master key.
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: c.name, Err: fmt.Errorf("%w: master key: %w", ErrKeyFileDamaged, err)})
		case opensConfig(k):
			return k, c.name, nil
		default:
			unwrapped = true
		}
	}
	if unwrapped {
		return nil, "", errors.New("the passphrase opens a key, but the config file does not decrypt with it (damaged config?)")
	}
	return nil, "", kerr
}

// ErrKeyFileDamaged is wrapped by the error of a key file whose structure
// is invalid: not the JSON of a key file, values of the wrong length, or
// cut short.
var ErrKeyFileDamaged = errors.New("damaged")

// KeyFileProblem is a key file that could not be tried, and why.
type KeyFileProblem struct {
	Name string
	Err  error
}

// KeyError is Open's error when no key file opened the repository. It
// matches ErrWrongPassword when at least one key file was tried with the
// password and failed authentication (a wrong password, or a key file
// modified in a way only the password could tell), ErrKeyFileDamaged and
// crypto.ErrKDFOutOfRange when a key file was skipped for that reason.
type KeyError struct {
	Total           int              // key files in the repository
	Tried           int              // key files considered (at most MaxKeyFiles)
	Unauthenticated []string         // key files the password did not open
	Damaged         []KeyFileProblem // key files skipped before trying the password
}

func (e *KeyError) Error() string {
	var parts []string
	switch len(e.Unauthenticated) {
	case 0:
		parts = append(parts, "no usable key file")
	case 1:
		parts = append(parts, fmt.Sprintf("wrong password, or key file %s was modified", e.Unauthenticated[0]))
	default:
		parts = append(parts, fmt.Sprintf("wrong password, or key files %s were modified", strings.Join(e.Unauthenticated, ", ")))
	}
	for _, p := range e.Damaged {
		if errors.Is(p.Err, crypto.ErrKDFOutOfRange) || errors.Is(p.Err, ErrKeyFileDamaged) {
			parts = append(parts, fmt.Sprintf("key file %s: %v", p.Name, p.Err))
		} else {
			parts = append(parts, fmt.Sprintf("key file %s: damaged: %v", p.Name, p.Err))
		}
	}
	if e.Total > e.Tried {
		parts = append(parts, fmt.Sprintf("%d more key files not tried (at most %d are)", e.Total-e.Tried, MaxKeyFiles))
	}
	return strings.Join(parts, "; ")
}

// Is reports ErrWrongPassword when the password was tried and failed.
func (e *KeyError) Is(target error) bool {
	return target == ErrWrongPassword && len(e.Unauthenticated) > 0
}

// Unwrap returns the errors of the skipped key files.
func (e *KeyError) Unwrap() []error {
	out := make([]error, len(e.Damaged))
	for i, p := range e.Damaged {
		out[i] = p.Err
	}
	return out
}

// AddKey stores a new key file wrapping the master key with password and
// returns its name.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if len(password) == 0 {
		return "", errors.New("add key: empty password")
	}
	w, err := crypto.DeriveWrappingKey(password, kdf)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	sealed, err := w.Wrap(r.key)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	host, _ := os.Hostname()
	kf := KeyFile{Created: r.now().UTC(), Hostname: host, Username: currentUser(), KDF: kdf, Data: sealed}
	b, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	name := fileID(b).String()
	if err := r.be.Save(ctx, backend.Handle{Type: backend.Key, Name: name}, b); err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	return name, nil
}

// RemoveKey deletes the key file name; the key in use cannot be removed.
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	if name == r.keyName {
		return errors.New("remove key: refusing to remove the key in use")
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: name})
}

// KeyName returns the name of the key file that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }

// Keys lists key files.
func (r *Repository) Keys(ctx context.Context) ([]string, error) {
	var names []string
	err := r.be.List(ctx, backend.Key, func(n string, _ int64) error { names = append(names, n); return nil })
	sort.Strings(names)
	return names, err
}

// Config returns the repository parameters.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the storage backend.
func (r *Repository) Backend() backend.Backend { return r.be }

// Chunker returns the repository's chunker.
func (r *Repository) Chunker() *chunker.Chunker { return r.chunker }

// Key returns the master key.
func (r *Repository) Key() *crypto.Key { return r.key }

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

// fileID names a repository file: unkeyed BLAKE3-256 of its stored bytes.
func fileID(b []byte) ID { return crypto.Hash(b) }

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// encryptFile seals a metadata file: 1 format byte (0 raw, 1 zstd), then
// the payload.
func (r *Repository) encryptFile(plain []byte) []byte {
	buf := make([]byte, 1, len(plain)/2+64)
	buf[0] = 1
	buf = r.enc.EncodeAll(plain, buf)
	return r.key.Seal(make([]byte, 0, len(buf)+r.key.Overhead()), buf)
}

func decryptFile(k *crypto.Key, dec *zstd.Decoder, sealed []byte) ([]byte, error) {
	b, err := k.Open(nil, sealed)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty payload")
	}
	switch b[0] {
	case 0:
		return b[1:], nil
	case 1:
		if dec == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
			if err != nil {
				return nil, err
			}
			defer d.Close()
			dec = d
		}
		out, err := dec.DecodeAll(b[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown payload format %d", b[0])
}

// DecryptFile decrypts a metadata file loaded from the backend.
func (r *Repository) DecryptFile(sealed []byte) ([]byte, error) {
	return decryptFile(r.key, r.dec, sealed)
}

// SaveFile encrypts plain and stores it as a file of type t named by the
// SHA-256 of the stored bytes.
func (r *Repository) SaveFile(ctx context.Context, t backend.FileType, plain []byte) (ID, error) {
	b := r.encryptFile(plain)
	id := fileID(b)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, b); err != nil {
		return id, err
	}
	return id, nil
}

// LoadFile loads, verifies and decrypts a metadata file.
func (r *Repository) LoadFile(ctx context.Context, t backend.FileType, id ID) ([]byte, error) {
	h := backend.Handle{Type: t, Name: id.String()}
	b, err := backend.LoadFile(ctx, r.be, h, backend.FileLimit(t))
	if err != nil {
		return nil, err
	}
	if fileID(b) != id {
		return nil, fmt.Errorf("%s: content does not match its name (damaged)", h)
	}
	plain, err := r.DecryptFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return plain, nil
}

// List returns the IDs of files of type t; names that are not IDs are
// skipped.
func (r *Repository) List(ctx context.Context, t backend.FileType) (map[ID]int64, error) {
	out := map[ID]int64{}
	err := r.be.List(ctx, t, func(name string, size int64) error {
		if id, err := crypto.ParseID(name); err == nil {
			out[id] = size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	return out, nil
}

// LoadIndex reads every index file. Unreadable index files are recorded
// (see IndexErrors) and their packs indexed from the pack headers, so a
// damaged index never hides intact data.
func (r *Repository) LoadIndex(ctx context.Context) error {
	ids, err := r.List(ctx, backend.Index)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var todo []ID
	for id := range ids {
		if !r.indexFiles[id] {
			todo = append(todo, id)
		}
	}
	for _, id := range todo {
		g.Go(func() error {
			b, err := r.LoadFile(gctx, backend.Index, id)
			var packs map[ID][]PackBlob
			if err == nil {
				packs, err = DecodeIndex(b)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.indexErrs[id] = err
				r.log.Warn("index file unreadable, indexing packs from their headers", "index", id.Short(), "err", err)
				return nil
			}
			r.indexFiles[id] = true
			for p, bs := range packs {
				r.idx.AddPack(p, bs)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(r.indexErrs) > 0 {
		n, err := r.AdoptPacks(ctx)
		if err != nil {
			return err
		}
		r.adopted = n
	}
	return nil
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

// PackLimit returns the most bytes a pack of this repository can hold:
// its pack size, or one segment when a single segment is larger, plus the
// header. LoadPack refuses larger files.
func (r *Repository) PackLimit() int64 {
	return int64(max(r.cfg.PackSize, maxSealedSegment)) + maxHeaderSize + 4
}

// LoadPack reads the whole pack id (for check, prune and repair),
// refusing before reading one larger than PackLimit: the storage may
// hold a file of any size under a pack's name.
func (r *Repository) LoadPack(ctx context.Context, id ID) ([]byte, error) {
	return backend.LoadFile(ctx, r.be, backend.Handle{Type: backend.Pack, Name: id.String()}, r.PackLimit())
}

// LoadPackHeader reads and decrypts the header of pack id of size bytes.
func (r *Repository) LoadPackHeader(ctx context.Context, id ID, size int64) ([]PackBlob, error) {
	h := backend.Handle{Type: backend.Pack, Name: id.String()}
	if size < 4 || size > r.PackLimit() {
		return nil, fmt.Errorf("pack %s: size %d out of range 4..%d", id.Short(), size, r.PackLimit())
	}
	tailLen := min(size, 64<<10)
	tail, err := r.be.Load(ctx, h, size-tailLen, int(tailLen))
	if err != nil {
		return nil, err
	}
	return r.decodePackTail(tail, size)
}

func (r *Repository) decodePackTail(tail []byte, size int64) ([]PackBlob, error) {
	off, hl, err := parsePackTrailer(tail, size)
	if err != nil {
		return nil, err
	}
	start := int64(len(tail)) - 4 - int64(hl)
	if start < 0 {
		return nil, fmt.Errorf("pack header of %d bytes beyond tail read", hl)
	}
	hdr, err := r.key.Open(nil, tail[start:len(tail)-4])
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	return DecodePackHeader(hdr, off)
}

// ErrPackContent says a pack's content does not hash to its name.
var ErrPackContent = errors.New("content does not match its name")

// DecodePack verifies a whole pack file: its name, header and every blob.
// It returns the header's blobs and, per blob, an error or nil. A pack
// whose content does not match its name is still decoded when its header
// is intact, so that the damage is narrowed to the blobs it hit: the
// error is then ErrPackContent, returned with the blobs and their errors.
func (r *Repository) DecodePack(id ID, data []byte) ([]PackBlob, []error, error) {
	var nameErr error
	if fileID(data) != id {
		nameErr = ErrPackContent
	}
	size := int64(len(data))
	if size < 4 {
		return nil, nil, errors.Join(nameErr, errors.New("pack too short"))
	}
	blobs, err := r.decodePackTail(data, size)
	if err != nil {
		if nameErr != nil {
			return nil, nil, fmt.Errorf("%w; header: %w", nameErr, err)
		}
		return nil, nil, err
	}
	errs := make([]error, len(blobs))
	d := r.NewSegmentDecoder()
	for i, b := range blobs {
		_, errs[i] = d.Decode(b.BlobHandle, data[b.Offset:b.Offset+b.Length], b.Location(id), nil)
	}
	return blobs, errs, nameErr
}

// compressBlob returns the payload to seal for data: its zstd frame in
// a buffer of r.compBufs (tmp, for the caller to put back) when that
// saves at least 1/32, else data itself (tmp nil).
func (r *Repository) compressBlob(data []byte) (payload []byte, tmp []byte, compressed bool) {
	if r.cfg.Compression > 0 && len(data) > 64 {
		// Output that does not save 1/32 is not kept, so a buffer of
		// the input's size suffices; zstd grows it if it must.
		if len(data) <= compBufSize {
			tmp = r.compBufs.get()
		} else {
			tmp = make([]byte, 0, len(data))
		}
		c := r.enc.EncodeAll(data, tmp)
		if len(c) < len(data)-len(data)/32 {
			return c, tmp, true
		}
		r.compBufs.put(tmp)
	}
	return data, nil, false
}

// compBufSize is the capacity of pooled compression buffers: a whole
// data segment.
const compBufSize = groupTargetData

func (r *Repository) getBuf(n int) *[]byte {
	if b, ok := r.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return b
	}
	b := make([]byte, 0, max(n, 64<<10))
	return &b
}

func (r *Repository) putBuf(b *[]byte) {
	if cap(*b) <= 16<<20 {
		*b = (*b)[:0]
		r.bufs.Put(b)
	}
}

// openSegment decrypts and, if compressed, decompresses a sealed segment
// whose plaintext is segRaw bytes; buf is reused when large enough.
func (r *Repository) openSegment(sealed []byte, compressed bool, segRaw uint32, buf []byte) ([]byte, error) {
	if segRaw > maxSegmentRaw {
		return nil, fmt.Errorf("raw length %d too large", segRaw)
	}
	var p []byte
	var err error
	if compressed {
		scratch := r.getBuf(len(sealed))
		defer r.putBuf(scratch)
		c, err := r.key.Open((*scratch)[:0], sealed)
		if err != nil {
			return nil, err
		}
		*scratch = c
		if cap(buf) < int(segRaw) {
			buf = make([]byte, 0, segRaw)
		}
		p, err = r.dec.DecodeAll(c, buf[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	} else {
		p, err = r.key.Open(buf[:0], sealed)
		if err != nil {
			return nil, err
		}
	}
	if uint32(len(p)) != segRaw {
		return nil, fmt.Errorf("length %d, index says %d", len(p), segRaw)
	}
	return p, nil
}

// blobInSegment returns blob h at loc from its segment's plaintext and
// checks it against its ID.
func (r *Repository) blobInSegment(h BlobHandle, seg []byte, loc Location) ([]byte, error) {
	end := uint64(loc.Inner) + uint64(loc.RawLength)
	if end > uint64(len(seg)) {
		return nil, fmt.Errorf("blob %s: place %d+%d beyond segment of %d bytes", h, loc.Inner, loc.RawLength, len(seg))
	}
	p := seg[loc.Inner:end:end]
	if r.key.ID(p) != h.ID {
		return nil, fmt.Errorf("blob %s: content does not match its ID", h)
	}
	return p, nil
}

// shared reports whether the blob at loc shares its segment with others.
func (loc Location) shared() bool { return loc.Inner != 0 || loc.SegmentRaw != loc.RawLength }

// decodeBlob returns blob h from sealed, the bytes of a segment holding
// only it (see SegmentDecoder for shared ones), in buf when large enough.
func (r *Repository) decodeBlob(h BlobHandle, sealed []byte, loc Location, buf []byte) ([]byte, error) {
	p, err := r.openSegment(sealed, loc.Compressed, loc.RawLength, buf)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	return r.blobInSegment(h, p, loc)
}

// LoadBlob reads, decrypts and verifies a blob. buf is reused when large
// enough. The plaintext of shared segments is cached, so reading the
// blobs of one segment one after another decodes it once.
func (r *Repository) LoadBlob(ctx context.Context, h BlobHandle, buf []byte) ([]byte, error) {
	loc, ok := r.idx.Lookup(h)
	if !ok {
		return nil, fmt.Errorf("load blob %s: %w", h, errNoIndex)
	}
	if loc.shared() {
		if seg, ok := r.segs.get(loc.Pack, loc.Offset); ok {
			p, err := r.blobInSegment(h, seg, loc)
			if err != nil {
				return nil, err
			}
			return append(buf[:0], p...), nil
		}
	}
	sealed, err := r.be.Load(ctx, backend.Handle{Type: backend.Pack, Name: loc.Pack.String()}, int64(loc.Offset), int(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("load blob %s: %w", h, err)
	}
	if !loc.shared() {
		return r.decodeBlob(h, sealed, loc, buf)
	}
	seg, err := r.openSegment(sealed, loc.Compressed, loc.SegmentRaw, nil)
	if err != nil {
		return nil, fmt.Errorf("blob %s: segment at %d: %w", h, loc.Offset, err)
	}
	p, err := r.blobInSegment(h, seg, loc)
	if err != nil {
		return nil, err
	}
	r.segs.put(loc.Pack, loc.Offset, seg)
	return append(buf[:0], p...), nil
}

// SegmentDecoder decodes blobs from loaded segments and keeps the last
// shared segment's plaintext, so the blobs of one segment, decoded one
// after another, cost one decryption and decompression. Not safe for
// concurrent use: one per worker.
type SegmentDecoder struct {
	r     *Repository
	pack  ID
	off   uint32
	valid bool
	plain []byte
}

// NewSegmentDecoder returns a decoder for blobs of r.
func (r *Repository) NewSegmentDecoder() *SegmentDecoder { return &SegmentDecoder{r: r} }

// Decode returns blob h at loc from sealed, its segment's bytes. A blob of
// a shared segment is returned as a slice of the decoder's buffer, valid
// until the next call; others land in buf when it is large enough.
func (d *SegmentDecoder) Decode(h BlobHandle, sealed []byte, loc Location, buf []byte) ([]byte, error) {
	if !loc.shared() {
		return d.r.decodeBlob(h, sealed, loc, buf)
	}
	if !d.valid || d.pack != loc.Pack || d.off != loc.Offset {
		d.valid = false
		seg, err := d.r.openSegment(sealed, loc.Compressed, loc.SegmentRaw, d.plain)
		if err != nil {
			return nil, fmt.Errorf("blob %s: segment at %d: %w", h, loc.Offset, err)
		}
		d.plain, d.pack, d.off, d.valid = seg, loc.Pack, loc.Offset, true
	}
	return d.r.blobInSegment(h, d.plain, loc)
}

// HasBlob reports whether h is stored or being stored.
func (r *Repository) HasBlob(h BlobHandle) bool {
	if r.idx.Has(h) {
		return true
	}
	r.mu.Lock()
	_, ok := r.pending[h]
	r.mu.Unlock()
	return ok
}

// SaveBlob stores data as a blob of type t unless the repository already
// has it. It returns the blob ID and whether the blob was new. Safe for
// concurrent use; compression and encryption run in the caller's
// goroutine, and the caller that fills a pack writes it.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, bool, error) {
	return r.saveBlob(ctx, t, data, false)
}

// RepackBlob stores data again even though the index has it (prune moves
// used blobs out of packs it deletes).
func (r *Repository) RepackBlob(ctx context.Context, t BlobType, data []byte) error {
	_, _, err := r.saveBlob(ctx, t, data, true)
	return err
}

// SavedPacks returns the packs written since Open.
func (r *Repository) SavedPacks() map[ID][]PackBlob {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[ID][]PackBlob, len(r.saved))
	for id, bs := range r.saved {
		out[id] = bs
	}
	return out
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

func (r *Repository) saveBlob(ctx context.Context, t BlobType, data []byte, force bool) (ID, bool, error) {
	h := BlobHandle{Type: t, ID: r.key.ID(data)}
	if !force && r.idx.Has(h) {
		return h.ID, false, nil
	}
	r.mu.Lock()
	if r.saveErr != nil {
		err := r.saveErr
		r.mu.Unlock()
		return h.ID, false, err
	}
	if _, ok := r.pending[h]; ok {
		r.mu.Unlock()
		return h.ID, false, nil
	}
	r.pending[h] = struct{}{}
	// Data segments stay within half a pack, so small packs still hold
	// several.
	target := min(groupTargetData, r.cfg.PackSize/2)
	if t == TreeBlob {
		target = groupTargetTree
	}
	if !r.cfg.Grouped() || len(data) >= target {
		r.mu.Unlock()
		return h.ID, true, r.storeSegment(ctx, []segBlob{{h: h, rawLen: len(data)}}, data)
	}
	// The blob joins its type's open segment. A segment it would take
	// past the target is closed first. A closed data segment is
	// compressed and stored in the background, so callers go on reading
	// and chunking; a tree segment is stored by its caller.
	var full *openGroup
	g := r.groups[t]
	if g != nil && len(g.buf)+len(data) > target {
		full, g = g, nil
	}
	if g == nil {
		g = &openGroup{buf: r.getGroupBuf(t)}
		r.groups[t] = g
	}
	g.buf = append(g.buf, data...)
	g.blobs = append(g.blobs, segBlob{h: h, rawLen: len(data)})
	if len(g.buf) >= target || len(g.blobs) >= maxGroupBlobs {
		r.groups[t] = nil // filled by this blob: closed too
	} else {
		g = nil
	}
	r.mu.Unlock()
	var err error
	for _, c := range []*openGroup{full, g} {
		if c != nil {
			if cerr := r.closeGroup(ctx, t, c); err == nil {
				err = cerr
			}
		}
	}
	return h.ID, true, err
}

// getGroupBuf returns an empty buffer for an open segment of type t.
func (r *Repository) getGroupBuf(t BlobType) []byte {
	if t == TreeBlob {
		return make([]byte, 0, groupTargetTree)
	}
	return r.groupBufs.get()
}

// closeGroup stores a segment that is full: a data segment in the
// background, at most GOMAXPROCS at once (the caller waits for a slot),
// a tree segment right away.
func (r *Repository) closeGroup(ctx context.Context, t BlobType, g *openGroup) error {
	if t != DataBlob {
		return r.storeGroup(ctx, g)
	}
	select {
	case r.compressing <- struct{}{}:
	case <-ctx.Done():
		return r.storeGroup(ctx, g) // cancelled: still store it (checkpoint)
	}
	r.compressWG.Add(1)
	go func() {
		defer r.compressWG.Done()
		defer func() { <-r.compressing }()
		if err := r.storeGroup(ctx, g); err != nil {
			r.mu.Lock()
			if r.saveErr == nil {
				r.saveErr = err
			}
			r.mu.Unlock()
		}
	}()
	return nil
}

// storeGroup stores a filled (or flushed) group as one segment.
func (r *Repository) storeGroup(ctx context.Context, g *openGroup) error {
	err := r.storeSegment(ctx, g.blobs, g.buf)
	r.groupBufs.put(g.buf)
	return err
}

// storeSegment compresses and seals payload, the plaintext of blobs, into
// the pack being filled, and writes the pack when it is full.
func (r *Repository) storeSegment(ctx context.Context, blobs []segBlob, payload []byte) error {
	comp, tmp, compressed := r.compressBlob(payload)
	sealedLen := len(comp) + r.key.Overhead()

	r.mu.Lock()
	var full *packBuilder
	// A segment that would overflow the pack closes it first, so packs
	// stay within PackSize (plus the header) unless one segment is larger.
	if r.cur != nil && len(r.cur.blobs) > 0 && (len(r.cur.buf)+sealedLen > r.cfg.PackSize || len(r.cur.blobs)+len(blobs) > maxPackBlobs) {
		full, r.cur = r.cur, nil
	}
	if r.cur == nil {
		r.cur = r.newPackBuilder(sealedLen)
	}
	// Reserve the segment's place in the pack and seal into it outside
	// the lock: no intermediate buffer, and workers encrypt in parallel.
	cur := r.cur
	dst := cur.reserve(blobs, sealedLen, len(payload), compressed)
	r.stats.Blobs += len(blobs)
	r.stats.BytesRaw += int64(len(payload))
	r.stats.BytesStored += int64(sealedLen)
	if full == nil && len(cur.buf) >= r.cfg.PackSize {
		full, r.cur = cur, nil
	}
	r.mu.Unlock()
	r.key.Seal(dst[:0], comp)
	cur.writers.Done()
	if tmp != nil {
		r.compBufs.put(tmp)
	}
	if full != nil {
		// Write the pack in the background (fsync is slow) while this
		// worker goes on compressing; at most uploadSlots packs are in
		// flight, which bounds memory.
		select {
		case r.uploads <- struct{}{}:
		case <-ctx.Done():
			// Cancelled: still write it, synchronously (checkpoint).
			return r.savePack(ctx, full, false)
		}
		r.uploadWG.Add(1)
		go func() {
			defer r.uploadWG.Done()
			defer func() { <-r.uploads }()
			_ = r.savePack(ctx, full, true) // the error is kept in r.saveErr
		}()
	}
	return nil
}

// newPackBuilder returns an empty pack whose buffer holds at least
// first bytes of blobs plus the header, so reserve never reallocates.
func (r *Repository) newPackBuilder(first int) *packBuilder {
	if first > r.cfg.PackSize {
		return &packBuilder{buf: make([]byte, 0, first+packSlack)}
	}
	return &packBuilder{buf: r.packBufs.get()}
}

// savePack writes a finished pack. It runs to completion even when ctx is
// cancelled, so a cancelled backup still keeps what it had packed. A pack
// written in the background, while other goroutines compress, is staged
// and committed when the backend can; one the caller waits for is saved.
func (r *Repository) savePack(ctx context.Context, p *packBuilder, background bool) error {
	ctx = context.WithoutCancel(ctx)
	p.writers.Wait() // blobs still being sealed into it
	data, id := p.finish(r.key, r.cfg.Grouped())
	h := backend.Handle{Type: backend.Pack, Name: id.String()}
	var err error
	if stager, ok := r.be.(backend.Stager); ok && background {
		// The buffer goes back once the data is written, before the wait
		// for the disk: packs being synced hold no memory.
		var st backend.Staged
		st, err = stager.Stage(ctx, h, data)
		r.packBufs.put(p.buf)
		if err == nil {
			err = st.Commit()
		}
	} else {
		err = r.be.Save(ctx, h, data)
		r.packBufs.put(p.buf)
	}
	r.mu.Lock()
	if err != nil {
		err = fmt.Errorf("save pack %s: %w", id.Short(), err)
		if r.saveErr == nil {
			r.saveErr = err
		}
		r.mu.Unlock()
		return err
	}
	r.idx.AddPack(id, p.blobs)
	for _, b := range p.blobs {
		delete(r.pending, b.BlobHandle)
	}
	r.unindexed[id] = p.blobs
	r.saved[id] = p.blobs
	r.stats.Packs++
	flush := len(r.unindexed) >= indexFlushPacks
	r.mu.Unlock()
	if flush {
		return r.writeIndex(ctx)
	}
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

// Flush writes the pack being filled and an index file for every pack not
// yet indexed. It completes even if ctx is cancelled (checkpoint).
func (r *Repository) Flush(ctx context.Context) error {
	r.mu.Lock()
	groups := r.groups
	r.groups = [TreeBlob + 1]*openGroup{}
	r.mu.Unlock()
	var gerr error
	for _, g := range groups {
		if g != nil && len(g.blobs) > 0 {
			if err := r.storeGroup(ctx, g); gerr == nil {
				gerr = err
			}
		}
	}
	r.compressWG.Wait() // segments compressed in the background
	r.uploadWG.Wait()
	if st, ok := r.be.(backend.Stager); ok {
		st.Idle() // the last pack is saved in the foreground, below
	}
	r.mu.Lock()
	p := r.cur
	r.cur = nil
	err := r.saveErr
	if err == nil {
		err = gerr
	}
	r.mu.Unlock()
	if p != nil && len(p.blobs) > 0 {
		if serr := r.savePack(ctx, p, false); err == nil {
			err = serr
		}
	}
	if ierr := r.writeIndex(ctx); err == nil {
		err = ierr
	}
	return err
}

// SaveTree encodes and stores a tree blob.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	b, err := EncodeTree(t)
	if err != nil {
		return ID{}, err
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b)
	return id, err
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, BlobHandle{Type: TreeBlob, ID: id}, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// SaveSnapshot stores s and sets its ID.
func (r *Repository) SaveSnapshot(ctx context.Context, s *Snapshot) (ID, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return ID{}, err
	}
	id, err := r.SaveFile(ctx, backend.Snapshot, b)
	if err != nil {
		return id, fmt.Errorf("save snapshot: %w", err)
	}
	s.id = id
	return id, nil
}

// LoadSnapshot loads snapshot id.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	b, err := r.LoadFile(ctx, backend.Snapshot, id)
	if err != nil {
		return nil, err
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), err)
	}
	s.id = id
	return s, nil
}

// Snapshots loads every snapshot, sorted by time. Unreadable snapshot
// files are returned in bad rather than failing the listing.
func (r *Repository) Snapshots(ctx context.Context) (snaps []*Snapshot, bad map[ID]error, err error) {
	ids, err := r.List(ctx, backend.Snapshot)
	if err != nil {
		return nil, nil, err
	}
	bad = map[ID]error{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for id := range ids {
		g.Go(func() error {
			s, err := r.LoadSnapshot(gctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				bad[id] = err
				return nil
			}
			snaps = append(snaps, s)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sort.Slice(snaps, func(i, j int) bool {
		if !snaps[i].Time.Equal(snaps[j].Time) {
			return snaps[i].Time.Before(snaps[j].Time)
		}
		return strings.Compare(snaps[i].id.String(), snaps[j].id.String()) < 0
	})
	return snaps, bad, nil
}

// FindSnapshot resolves "latest" or a unique ID prefix.
func (r *Repository) FindSnapshot(ctx context.Context, ref string) (*Snapshot, error) {
	if ref == "" {
		return nil, errors.New("find snapshot: empty reference")
	}
	if ref == "latest" {
		snaps, _, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		if len(snaps) == 0 {
			return nil, errors.New("find snapshot latest: repository has no snapshots")
		}
		return snaps[len(snaps)-1], nil
	}
	ids, err := r.List(ctx, backend.Snapshot)
	if err != nil {
		return nil, err
	}
	var found []ID
	for id := range ids {
		if strings.HasPrefix(id.String(), strings.ToLower(ref)) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("find snapshot %q: no such snapshot", ref)
	case 1:
		return r.LoadSnapshot(ctx, found[0])
	}
	return nil, fmt.Errorf("find snapshot %q: prefix matches %d snapshots", ref, len(found))
}

// RemoveSnapshot deletes snapshot id.
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	return r.be.Remove(ctx, backend.Handle{Type: backend.Snapshot, Name: id.String()})
}
