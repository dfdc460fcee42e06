package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// Options configure Import.
type Options struct {
	// Snapshots are ID prefixes of the source snapshots to import; empty:
	// every one.
	Snapshots []string
	// Workers convert files at the same time (default GOMAXPROCS).
	Workers int
	// Limits bound the walk of the source's trees: MaxNodes counts the
	// entries of every directory converted in the run (a directory met
	// again is not converted again, so a DAG of trees costs what its
	// distinct trees hold), MaxDepth the nesting.
	Limits repository.Limits
	// Progress is called after each snapshot and about every
	// ProgressInterval (default 1 s) while one is converted.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Warn receives each source snapshot that could not be read or
	// imported (also counted in Result.Errors); default: ignored.
	Warn func(snapshot string, err error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Progress is a live view of an import.
type Progress struct {
	Snapshot       string        `json:"snapshot"` // source ID being imported
	SnapshotsDone  int           `json:"snapshots_done"`
	SnapshotsTotal int           `json:"snapshots_total"`
	Files          int64         `json:"files"`      // files whose content was converted
	BytesRead      int64         `json:"bytes_read"` // bytes read from the source
	BytesAdded     int64         `json:"bytes_added"`
	Elapsed        time.Duration `json:"elapsed_ns"`
}

// Result is the outcome of Import.
type Result struct {
	Source   string             `json:"source"`
	Imported []ImportedSnapshot `json:"imported"`
	// Skipped are source snapshots the repository already holds (same
	// time, host, paths and tags): an import run again adds what is new.
	Skipped     []string      `json:"skipped"`
	Errors      int           `json:"errors"`
	Files       int64         `json:"files"`
	BytesRead   int64         `json:"bytes_read"`
	BytesAdded  int64         `json:"bytes_added"`  // plaintext of new blobs
	BytesStored int64         `json:"bytes_stored"` // new blobs compressed and sealed
	Duration    time.Duration `json:"duration_ns"`
}

// ImportedSnapshot pairs a source snapshot with the one written.
type ImportedSnapshot struct {
	Source string    `json:"source"`
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
}

// ErrPartial is matched by the error of an import that left snapshots
// out (named through Options.Warn).
var ErrPartial = errors.New("some snapshots were not imported")

// Import writes every snapshot of src (or those opts.Snapshots name)
// into dst as a hostd snapshot with the source's time, host, user,
// paths, tags and file metadata. File contents are read from the
// source, authenticated, cut by dst's chunker and stored as any backup
// stores them, so they deduplicate against each other and against
// dst's own backups. A directory or a file's content met again (in a
// later snapshot, or as a hard link) is converted once per run.
//
// Each snapshot is written once its data and index are; an import that
// fails or is cancelled keeps the snapshots finished so far, and the
// next run skips them. dst is held under a shared lock.
func Import(ctx context.Context, dst *backup.Repository, src Source, opts Options) (*Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Warn == nil {
		opts.Warn = func(string, error) {}
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	if opts.Limits.MaxNodes <= 0 {
		opts.Limits.MaxNodes = repository.DefaultMaxWalkNodes
	}
	if opts.Limits.MaxDepth <= 0 {
		opts.Limits.MaxDepth = repository.DefaultMaxTreeDepth
	}
	start := opts.Now()
	repo := dst.Internal()
	res := &Result{Source: src.Location(), Imported: []ImportedSnapshot{}, Skipped: []string{}}
	snaps, bad, err := src.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("import from %s: list snapshots: %w", src.Location(), err)
	}
	for id, err := range bad {
		res.Errors++
		opts.Warn(id, fmt.Errorf("unreadable: %w", err))
	}
	if snaps, err = selectSnapshots(snaps, opts.Snapshots); err != nil {
		return nil, fmt.Errorf("import from %s: %w", src.Location(), err)
	}
	lock, err := repo.Lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer lock.Unlock()
	if _, err := repo.AdoptPacks(ctx); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	have, _, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: list snapshots: %w", err)
	}
	im := &importer{src: src, repo: repo, opts: opts, trees: map[ID]treeResult{}, files: map[[32]byte]*fileResult{}, start: start}
	before := repo.Stats()
	for i, s := range snaps {
		if slices.ContainsFunc(have, func(h *repository.Snapshot) bool { return sameSnapshot(s, h) }) {
			res.Skipped = append(res.Skipped, s.ID)
			continue
		}
		im.cur, im.done, im.total = s.ID, i, len(snaps)
		id, err := im.snapshot(ctx, s)
		if err != nil {
			if ctx.Err() != nil {
				_ = repo.Flush(context.WithoutCancel(ctx)) // keep what was stored for the next run
				im.fill(res, before, start)
				return res, fmt.Errorf("import snapshot %s: %w", s.ID, ctx.Err())
			}
			res.Errors++
			opts.Warn(s.ID, err)
			continue
		}
		res.Imported = append(res.Imported, ImportedSnapshot{Source: s.ID, ID: id.String(), Time: s.Time})
		im.done = i + 1
		im.progress(true)
	}
	im.fill(res, before, start)
	if res.Errors > 0 {
		return res, fmt.Errorf("import from %s: %w (%d)", src.Location(), ErrPartial, res.Errors)
	}
	return res, nil
}

// selectSnapshots keeps the snapshots refs name by ID prefix (all when
// refs is empty); a ref that names none, or several, is an error.
func selectSnapshots(snaps []Snapshot, refs []string) ([]Snapshot, error) {
	if len(refs) == 0 {
		return snaps, nil
	}
	var out []Snapshot
	for _, ref := range refs {
		var found []Snapshot
		for _, s := range snaps {
			if ref != "" && strings.HasPrefix(s.ID, strings.ToLower(ref)) {
				found = append(found, s)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("snapshot %q: no such snapshot", ref)
		case 1:
			if !slices.ContainsFunc(out, func(s Snapshot) bool { return s.ID == found[0].ID }) {
				out = append(out, found[0])
			}
		default:
			return nil, fmt.Errorf("snapshot %q: prefix matches %d snapshots", ref, len(found))
		}
	}
	slices.SortStableFunc(out, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// sameSnapshot reports whether the repository's h records source
// snapshot s (as Copy decides).
func sameSnapshot(s Snapshot, h *repository.Snapshot) bool {
	return s.Time.Equal(h.Time) && s.Hostname == h.Hostname && slices.Equal(s.Paths, h.Paths) && slices.Equal(s.Tags, h.Tags)
}

// importer converts one run's snapshots, keeping what it converted.
type importer struct {
	src  Source
	repo *repository.Repository
	opts Options

	mu    sync.Mutex
	trees map[ID]treeResult        // source tree -> hostd tree
	files map[[32]byte]*fileResult // content key -> hostd content
	nodes int64                    // entries of converted trees (Limits.MaxNodes)
	bufs  sync.Pool                // *[]byte chunker buffers

	files64   atomic.Int64
	bytesRead atomic.Int64

	start        time.Time
	lastProgress time.Time
	cur          string
	done, total  int
}

// treeResult is a converted directory and what is below it.
type treeResult struct {
	id    repository.ID
	files int   // regular files, each hard link counted
	dirs  int   // directories, itself included
	bytes int64 // sizes of the files
}

// fileResult is a file's content in hostd's terms, ready once done is
// closed.
type fileResult struct {
	done    chan struct{}
	content []repository.ID
	sparse  bool
	err     error
}

func (im *importer) fill(res *Result, before repository.WriteStats, start time.Time) {
	after := im.repo.Stats()
	res.Files, res.BytesRead = im.files64.Load(), im.bytesRead.Load()
	res.BytesAdded, res.BytesStored = after.BytesRaw-before.BytesRaw, after.BytesStored-before.BytesStored
	res.Duration = im.opts.Now().Sub(start)
}

func (im *importer) progress(force bool) {
	if im.opts.Progress == nil {
		return
	}
	now := im.opts.Now()
	if !force && now.Sub(im.lastProgress) < im.opts.ProgressInterval {
		return
	}
	im.lastProgress = now
	im.opts.Progress(Progress{Snapshot: im.cur, SnapshotsDone: im.done, SnapshotsTotal: im.total,
		Files: im.files64.Load(), BytesRead: im.bytesRead.Load(), BytesAdded: im.repo.Stats().BytesRaw, Elapsed: now.Sub(im.start)})
}

// snapshot converts s's trees and content and writes the snapshot.
func (im *importer) snapshot(ctx context.Context, s Snapshot) (repository.ID, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(im.opts.Workers)
	before := im.repo.Stats()
	root, err := im.tree(gctx, g, s.Tree, 0)
	root.dirs-- // the root is no directory of the source
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return repository.ID{}, err
	}
	// Data and index before the snapshot that names them.
	if err := im.repo.Flush(ctx); err != nil {
		return repository.ID{}, fmt.Errorf("flush: %w", err)
	}
	after := im.repo.Stats()
	now := im.opts.Now()
	snap := &repository.Snapshot{Time: s.Time, Tree: root.id, Paths: s.Paths, Hostname: s.Hostname, Username: s.Username,
		Tags: s.Tags, Summary: &repository.SnapshotSummary{Start: now, End: now,
			FilesNew: root.files, Dirs: root.dirs, BytesTotal: root.bytes,
			BytesAdded: after.BytesRaw - before.BytesRaw, BytesStored: after.BytesStored - before.BytesStored}}
	return im.repo.SaveSnapshot(ctx, snap)
}

// tree converts directory id (and everything below it) and returns the
// hostd tree's ID. File contents are converted by g's workers; this
// waits for those of its own entries.
func (im *importer) tree(ctx context.Context, g *errgroup.Group, id ID, depth int) (treeResult, error) {
	im.mu.Lock()
	tr, ok := im.trees[id]
	im.mu.Unlock()
	if ok {
		return tr, nil
	}
	tr.dirs = 1
	if depth > im.opts.Limits.MaxDepth {
		return treeResult{}, fmt.Errorf("directories nested deeper than %d: %w", im.opts.Limits.MaxDepth, repository.ErrWalkLimit)
	}
	nodes, err := im.src.Tree(ctx, id)
	if err != nil {
		return treeResult{}, err
	}
	im.mu.Lock()
	im.nodes += int64(len(nodes))
	over := im.nodes > im.opts.Limits.MaxNodes
	im.mu.Unlock()
	if over {
		return treeResult{}, fmt.Errorf("more than %d entries: %w", im.opts.Limits.MaxNodes, repository.ErrWalkLimit)
	}
	out := &repository.Tree{Nodes: make([]repository.Node, len(nodes))}
	pending := make([]*fileResult, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		out.Nodes[i] = n.Node
		out.Nodes[i].Content, out.Nodes[i].Subtree = nil, nil
		switch {
		case n.Type == repository.NodeDir:
			sub, err := im.tree(ctx, g, n.Subtree, depth+1)
			if err != nil {
				return treeResult{}, fmt.Errorf("%s/%w", n.Name, err)
			}
			out.Nodes[i].Subtree = &sub.id
			tr.files, tr.dirs, tr.bytes = tr.files+sub.files, tr.dirs+sub.dirs, tr.bytes+sub.bytes
		case n.Type == repository.NodeFile:
			tr.files++
			tr.bytes += int64(n.Size)
			if n.Size > 0 {
				pending[i] = im.file(ctx, g, n)
			}
		}
		im.progress(false)
	}
	for i, fr := range pending {
		if fr == nil {
			continue
		}
		select {
		case <-fr.done:
		case <-ctx.Done():
			return treeResult{}, ctx.Err()
		}
		if fr.err != nil {
			return treeResult{}, fmt.Errorf("%s: %w", nodes[i].Name, fr.err)
		}
		out.Nodes[i].Content, out.Nodes[i].Sparse = fr.content, fr.sparse
	}
	if tr.id, err = im.repo.SaveTree(ctx, out); err != nil {
		return treeResult{}, err
	}
	im.mu.Lock()
	im.trees[id] = tr
	im.mu.Unlock()
	return tr, nil
}

// contentKey names a file's content by the source's pieces and size.
func contentKey(n *Node) [32]byte {
	h := sha256.New()
	var sz [8]byte
	for i := range sz {
		sz[i] = byte(n.Size >> (8 * i))
	}
	h.Write(sz[:])
	for _, id := range n.Content {
		h.Write(id[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// file returns n's content in hostd's terms: converted before in this
// run, being converted, or now started on one of g's workers.
func (im *importer) file(ctx context.Context, g *errgroup.Group, n *Node) *fileResult {
	k := contentKey(n)
	im.mu.Lock()
	// A conversion that failed (in a snapshot that was then left out)
	// is tried again; reading err is safe once done is closed.
	if fr, ok := im.files[k]; ok && (!isDone(fr) || fr.err == nil) {
		im.mu.Unlock()
		return fr
	}
	fr := &fileResult{done: make(chan struct{})}
	im.files[k] = fr
	im.mu.Unlock()
	node := *n
	g.Go(func() error {
		defer close(fr.done)
		fr.content, fr.sparse, fr.err = im.convert(ctx, &node)
		if fr.err != nil {
			return fmt.Errorf("%s: %w", node.Name, fr.err)
		}
		im.files64.Add(1)
		return nil
	})
	return fr
}

func isDone(fr *fileResult) bool {
	select {
	case <-fr.done:
		return true
	default:
		return false
	}
}

// zeros is compared against to find chunks of zeros (holes).
var zeros = make([]byte, 64<<10)

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// convert reads n's content from the source and stores it cut by the
// repository's chunker. The file is marked sparse when a chunk of at
// least 4 KiB is all zeros, so restore leaves holes there (the source
// does not record which files were sparse).
func (im *importer) convert(ctx context.Context, n *Node) ([]repository.ID, bool, error) {
	rc, err := im.src.Open(ctx, n)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	max := im.repo.Chunker().Params().Max
	var buf []byte
	if p, ok := im.bufs.Get().(*[]byte); ok {
		buf = *p
	} else {
		buf = make([]byte, max+4<<20)
	}
	defer im.bufs.Put(&buf)
	var ids []repository.ID
	var size uint64
	sparse := false
	err = im.repo.Chunker().Split(&countingReader{r: rc, n: &im.bytesRead}, buf, func(chunk []byte) error {
		if !sparse && len(chunk) >= 4096 && allZero(chunk) {
			sparse = true
		}
		id, _, err := im.repo.SaveBlob(ctx, repository.DataBlob, chunk)
		if err != nil {
			return &saveError{err}
		}
		ids = append(ids, id)
		size += uint64(len(chunk))
		return nil
	})
	if err != nil {
		var se *saveError
		if errors.As(err, &se) {
			return nil, false, se.err
		}
		return nil, false, fmt.Errorf("read: %w", err)
	}
	if size != n.Size {
		return nil, false, fmt.Errorf("read %d bytes, the file's size is %d", size, n.Size)
	}
	return ids, sparse, nil
}

// saveError marks a repository failure in the chunker's callback.
type saveError struct{ err error }

func (e *saveError) Error() string { return e.err.Error() }
func (e *saveError) Unwrap() error { return e.err }

// countingReader counts the bytes read from the source.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
