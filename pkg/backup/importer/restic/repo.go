package restic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/pkg/backup/importer"
)

// ErrWrongPassword: no key file opened with the password.
var ErrWrongPassword = errors.New("wrong password for the restic repository, or its key files were modified")

// maxListing bounds the names read from one directory of the repository.
const maxListing = 10_000_000

// Repo is an open restic repository on a local file system, read only.
type Repo struct {
	dir     string
	key     *key
	cfg     config
	idx     map[blobKey]location
	treeDec *zstd.Decoder // at most maxTreeBlob out
	dataDec *zstd.Decoder // at most maxDataBlob out

	bufs sync.Pool // *[]byte of maxDataBlob capacity
}

var _ importer.Source = (*Repo)(nil)

// Options configure Open.
type Options struct {
	// Warn receives index files that cannot be read; they are left out
	// (their blobs are then missing unless another index names them).
	Warn func(file string, err error)
}

// Open unlocks the restic repository in dir with password and loads its
// index. Errors wrap ErrWrongPassword when no key file opens with it.
func Open(ctx context.Context, dir string, password []byte, opts Options) (*Repo, error) {
	if opts.Warn == nil {
		opts.Warn = func(string, error) {}
	}
	r := &Repo{dir: dir, idx: map[blobKey]location{}}
	var err error
	if r.treeDec, err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxTreeBlob), zstd.WithDecoderConcurrency(0)); err != nil {
		return nil, err
	}
	if r.dataDec, err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDataBlob), zstd.WithDecoderConcurrency(0)); err != nil {
		r.treeDec.Close()
		return nil, err
	}
	if err := r.open(ctx, password, opts); err != nil {
		r.Close()
		return nil, fmt.Errorf("open restic repository %s: %w", dir, err)
	}
	return r, nil
}

func (r *Repo) open(ctx context.Context, password []byte, opts Options) error {
	sealedCfg, err := r.readFile("config", maxConfigFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("not a restic repository (no config file)")
		}
		return err
	}
	if r.key, err = r.findKey(ctx, password); err != nil {
		return err
	}
	plain, err := r.key.open(nil, sealedCfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := unpack(r.treeDec, plain)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if r.cfg, err = decodeConfig(b); err != nil {
		return err
	}
	names, err := r.list("index")
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := r.loadFile("index", name, maxIndexFile)
		if err == nil {
			_, err = decodeIndex(b, r.idx, maxIndexBlobs-len(r.idx))
		}
		if err != nil {
			if len(r.idx) >= maxIndexBlobs {
				return fmt.Errorf("index/%s: %w", name, err)
			}
			opts.Warn("index/"+name, err)
		}
	}
	return nil
}

// findKey tries the key files, cheapest first, each bounded before any
// derivation.
func (r *Repo) findKey(ctx context.Context, password []byte) (*key, error) {
	names, err := r.list("keys")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no key files")
	}
	var problems []error
	if len(names) > maxKeyFiles {
		problems = append(problems, fmt.Errorf("%d key files, only the first %d tried", len(names), maxKeyFiles))
		names = names[:maxKeyFiles]
	}
	type cand struct {
		name string
		kf   *keyFile
	}
	var cands []cand
	for _, name := range names {
		b, err := r.readFile(filepath.Join("keys", name), maxKeyFile)
		if err == nil && hashName(b) != name {
			err = errors.New("damaged: content does not match its name")
		}
		var kf *keyFile
		if err == nil {
			kf, err = decodeKeyFile(b)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("key file %s: %w", name, err))
			continue
		}
		cands = append(cands, cand{name, kf})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].kf.params().cost() < cands[j].kf.params().cost() })
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dk, err := c.kf.params().derive(password)
		if err != nil {
			problems = append(problems, fmt.Errorf("key file %s: %w", c.name, err))
			continue
		}
		plain, err := dk.open(nil, c.kf.Data)
		if err != nil {
			continue // wrong password for this key
		}
		mk, err := decodeMasterKey(plain)
		if err != nil {
			problems = append(problems, fmt.Errorf("key file %s: %w", c.name, err))
			continue
		}
		return mk, nil
	}
	return nil, errors.Join(append([]error{ErrWrongPassword}, problems...)...)
}

// Location implements importer.Source.
func (r *Repo) Location() string { return "restic:" + r.dir }

// Version is the repository format version (1, or 2 with compression).
func (r *Repo) Version() int { return r.cfg.Version }

// Close implements importer.Source.
func (r *Repo) Close() error {
	r.treeDec.Close()
	r.dataDec.Close()
	return nil
}

// hashName is the file name restic gives b: its SHA-256 in hex.
func hashName(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// validName reports whether name is a restic file name (64 hex digits).
func validName(name string) bool {
	if len(name) != 64 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil
}

// list returns the file names of a directory of the repository (for
// data, of its 256 subdirectories), sorted, leaving out names that are
// not IDs (restic's temporary files). At most maxListing.
func (r *Repo) list(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(r.dir, dir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var names []string
	for {
		ents, err := f.ReadDir(4096)
		for _, e := range ents {
			if e.Type().IsRegular() && validName(e.Name()) {
				names = append(names, e.Name())
			}
		}
		if len(names) > maxListing {
			return nil, fmt.Errorf("%s: more than %d files", dir, maxListing)
		}
		if err == io.EOF || len(ents) == 0 {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
	}
	slices.Sort(names)
	return names, nil
}

// readFile reads a file of the repository: a regular file of at most
// limit bytes.
func (r *Repo) readFile(name string, limit int64) ([]byte, error) {
	return safefile.Read(filepath.Join(r.dir, name), limit)
}

// loadFile reads, checks and decrypts an encrypted file (index,
// snapshot) and returns its JSON.
func (r *Repo) loadFile(dir, name string, limit int64) ([]byte, error) {
	b, err := r.readFile(filepath.Join(dir, name), limit)
	if err != nil {
		return nil, err
	}
	if hashName(b) != name {
		return nil, errors.New("content does not match its name (damaged)")
	}
	plain, err := r.key.open(b[:0:0], b)
	if err != nil {
		return nil, err
	}
	return unpack(r.treeDec, plain)
}

// Snapshots implements importer.Source.
func (r *Repo) Snapshots(ctx context.Context) ([]importer.Snapshot, map[string]error, error) {
	names, err := r.list("snapshots")
	if err != nil {
		return nil, nil, err
	}
	bad := map[string]error{}
	var out []importer.Snapshot
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		b, err := r.loadFile("snapshots", name, maxSnapshotFile)
		var s *snapshotJSON
		if err == nil {
			s, err = decodeSnapshot(b)
		}
		if err != nil {
			bad[name] = err
			continue
		}
		out = append(out, importer.Snapshot{ID: name, Time: s.Time, Hostname: s.Hostname, Username: s.Username,
			Paths: s.Paths, Tags: s.Tags, Tree: importer.ID(*s.Tree)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, bad, nil
}

// Tree implements importer.Source.
func (r *Repo) Tree(ctx context.Context, id importer.ID) ([]importer.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := r.loadBlob(nil, blobKey{treeBlob, id}, nil)
	if err != nil {
		return nil, err
	}
	nodes, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return nodes, nil
}

func (r *Repo) packPath(id importer.ID) string {
	s := id.String()
	return filepath.Join(r.dir, "data", s[:2], s)
}

// packFile keeps one pack open for a reader of consecutive blobs.
type packFile struct {
	id importer.ID
	f  *os.File
}

func (p *packFile) close() {
	if p != nil && p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

// loadBlob reads blob k into buf (reused when large enough): the sealed
// bytes the index places, authenticated, decrypted, decompressed when
// the index says so, and checked against k's ID. pf, when not nil, keeps
// the pack open for the next call.
func (r *Repo) loadBlob(pf *packFile, k blobKey, buf []byte) ([]byte, error) {
	loc, ok := r.idx[k]
	if !ok {
		return nil, fmt.Errorf("blob %s: not in the index", k.id.Short())
	}
	var f *os.File
	if pf != nil && pf.f != nil && pf.id == loc.pack {
		f = pf.f
	} else {
		var err error
		if f, err = safefile.Open(r.packPath(loc.pack)); err != nil {
			return nil, fmt.Errorf("blob %s: pack %s: %w", k.id.Short(), loc.pack.Short(), err)
		}
		if pf != nil {
			pf.close()
			pf.id, pf.f = loc.pack, f
		} else {
			defer f.Close()
		}
	}
	sb := r.bufs.Get()
	var sealed []byte
	if p, ok := sb.(*[]byte); ok && cap(*p) >= int(loc.length) {
		sealed = (*p)[:loc.length]
	} else {
		sealed = make([]byte, loc.length, max(int(loc.length), maxDataBlob))
	}
	defer func() { r.bufs.Put(&sealed) }()
	if _, err := f.ReadAt(sealed, int64(loc.offset)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("blob %s: pack %s: read: %w", k.id.Short(), loc.pack.Short(), err)
	}
	var plain []byte
	var err error
	if loc.raw == 0 {
		plain, err = r.key.open(buf, sealed)
	} else {
		var z []byte
		z, err = r.key.open(nil, sealed)
		if err == nil {
			dec := r.dataDec
			if k.t == treeBlob {
				dec = r.treeDec
			}
			if cap(buf) < int(loc.raw) {
				buf = make([]byte, 0, loc.raw)
			}
			plain, err = dec.DecodeAll(z, buf[:0])
			if err == nil && len(plain) != int(loc.raw) {
				err = fmt.Errorf("decompressed to %d bytes, the index says %d", len(plain), loc.raw)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: pack %s: %w", k.id.Short(), loc.pack.Short(), err)
	}
	if sha256.Sum256(plain) != k.id {
		return nil, fmt.Errorf("blob %s: pack %s: content does not match its ID", k.id.Short(), loc.pack.Short())
	}
	return plain, nil
}

// Open implements importer.Source. The blobs are checked against the
// index and the node's size before any is read.
func (r *Repo) Open(ctx context.Context, n *importer.Node) (io.ReadCloser, error) {
	var total uint64
	for _, id := range n.Content {
		loc, ok := r.idx[blobKey{dataBlob, id}]
		if !ok {
			return nil, fmt.Errorf("blob %s: not in the index", id.Short())
		}
		raw := uint64(loc.raw)
		if raw == 0 {
			raw = uint64(loc.length) - overhead
		}
		total += raw
	}
	if total != n.Size {
		return nil, fmt.Errorf("content of %d bytes, the file's size is %d", total, n.Size)
	}
	return &contentReader{ctx: ctx, r: r, ids: n.Content, pf: &packFile{}}, nil
}

// contentReader yields a file's blobs one after another.
type contentReader struct {
	ctx  context.Context
	r    *Repo
	ids  []importer.ID
	pf   *packFile
	buf  []byte
	rest []byte
}

func (c *contentReader) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		if len(c.ids) == 0 {
			return 0, io.EOF
		}
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		b, err := c.r.loadBlob(c.pf, blobKey{dataBlob, c.ids[0]}, c.buf)
		if err != nil {
			return 0, err
		}
		c.buf, c.rest, c.ids = b, b, c.ids[1:]
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

func (c *contentReader) Close() error {
	c.pf.close()
	return nil
}
