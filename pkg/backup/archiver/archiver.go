package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/pattern"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// cacheDirTagSignature starts a valid CACHEDIR.TAG (bford.info/cachedir).
const cacheDirTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"

// Options configure one backup run.
type Options struct {
	Paths            []string         // absolute source paths
	Matcher          *pattern.Matcher // excludes/includes; nil matches nothing
	ExcludeCaches    bool             // skip directories holding a valid CACHEDIR.TAG
	ExcludeIfPresent []string         // skip directories holding any of these names
	OneFileSystem    bool             // do not cross mount points (they are kept, empty)
	Hostname         string
	Tags             []string
	Cache            *FileCache       // nil: read every file
	FileWorkers      int              // files read concurrently; default GOMAXPROCS
	BlobWorkers      int              // chunks hashed/compressed/encrypted concurrently; default GOMAXPROCS
	Now              func() time.Time // default time.Now
	// Progress, when set, is called about every ProgressInterval and once
	// at the end; it must not block.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Warn is called for each path that could not be saved.
	Warn func(path string, err error)
	// ExcludeLargerThan skips regular files larger than this many bytes
	// (0: no limit).
	ExcludeLargerThan int64
	// Time is the snapshot's time (zero: when the run started).
	Time time.Time
	// DryRun walks and decides as a backup would, reading no file and
	// writing nothing to the repository; DryRunFile is called for each
	// file that would be read, with its size, the bytes that would be
	// read (less for a sparse file) and "new" or "changed", one call at a
	// time.
	DryRun     bool
	DryRunFile func(path string, size, read int64, status string)
}

// Progress is a live view of a run.
type Progress struct {
	FilesDone  int64
	FilesTotal int64 // from a concurrent scan; grows until ScanDone
	BytesDone  int64
	BytesTotal int64
	ScanDone   bool
	BytesAdded int64
	Errors     int64
	Elapsed    time.Duration
	Current    string
}

// Result is what a run produced.
type Result struct {
	Snapshot *repository.Snapshot // nil when cancelled (checkpoint only)
	Summary  repository.SnapshotSummary
	Warnings []string // files that changed while being read
}

// Run backs up opts.Paths into repo. On cancellation it checkpoints: all
// packed data and its index are written, no snapshot is, and the context
// error is returned together with the partial result.
func Run(ctx context.Context, repo *repository.Repository, opts Options) (*Result, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FileWorkers <= 0 {
		opts.FileWorkers = runtime.GOMAXPROCS(0)
	}
	if opts.BlobWorkers <= 0 {
		opts.BlobWorkers = runtime.GOMAXPROCS(0)
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	if opts.Warn == nil {
		opts.Warn = func(string, error) {}
	}
	paths, err := cleanPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	a := &archiver{repo: repo, opts: opts, names: newIDNames(), start: opts.Now(), inlineBlobs: repo.Config().Grouped(),
		dirBuf: make([]byte, dirBufSize)}
	a.before = repo.Stats()
	res, err := a.run(ctx, paths)
	if opts.DryRun {
		res.Summary.End = opts.Now()
		return &res.Result, err
	}
	// The file cache is written while the last packs and the index are:
	// it only names blobs, and a later run uses an entry only if the
	// index has all of its blobs, so it is safe ahead of the snapshot.
	cacheSaved := make(chan error, 1)
	if err == nil {
		go func() { cacheSaved <- opts.Cache.Save() }()
	} else {
		cacheSaved <- nil
	}
	// Checkpoint: whatever was packed reaches the repository with its
	// index, whether the run succeeded, failed or was cancelled.
	if ferr := repo.Flush(ctx); ferr != nil && err == nil {
		err = fmt.Errorf("flush: %w", ferr)
	}
	after := repo.Stats()
	res.Summary.BytesAdded = after.BytesRaw - a.before.BytesRaw
	res.Summary.BytesStored = after.BytesStored - a.before.BytesStored
	res.Summary.End = opts.Now()
	if err != nil {
		<-cacheSaved
		return &res.Result, err
	}
	when := a.start
	if !opts.Time.IsZero() {
		when = opts.Time
	}
	snap := &repository.Snapshot{
		Time: when, Tree: res.rootID, Paths: paths, Hostname: opts.Hostname,
		Username: currentUsername(), Tags: opts.Tags,
	}
	sum := res.Summary
	snap.Summary = &sum
	if _, err := repo.SaveSnapshot(ctx, snap); err != nil {
		<-cacheSaved
		return &res.Result, err
	}
	res.Snapshot = snap
	if err := <-cacheSaved; err != nil {
		opts.Warn("file cache", err)
	}
	a.report(true)
	return &res.Result, nil
}

type runResult struct {
	Result
	rootID repository.ID
}

type archiver struct {
	repo   *repository.Repository
	opts   Options
	names  *idNames
	start  time.Time
	before repository.WriteStats

	filesCh chan *fileJob
	blobsCh chan *blobJob
	// inlineBlobs: file workers save chunks themselves, because the
	// repository compresses in the background (grouped repositories).
	inlineBlobs bool
	// blobSlots bounds the chunk copies queued for or held by blob
	// workers; with none free a file worker saves the chunk itself.
	blobSlots chan struct{}
	treeCh    chan *dirTask
	bufPool   sync.Pool
	// The walker's buffers (one goroutine walks).
	dirBuf   []byte
	xattrBuf []byte

	mu       sync.Mutex
	summary  repository.SnapshotSummary
	warnings []string

	filesDone, bytesDone, filesTotal, bytesTotal, errCount atomic.Int64
	scanDone                                               atomic.Bool
	current                                                atomic.Value
}

type fileJob struct {
	path string
	node *repository.Node
	res  chan error
	// openXattrs: the walk did not read the file's extended attributes;
	// the worker reads them from the open file.
	openXattrs bool
}

type blobJob struct {
	data []byte
	res  chan blobResult
}

type blobResult struct {
	id  repository.ID
	err error
}

// dirTask is a directory whose tree is saved once its files are done.
type dirTask struct {
	path    string
	nodes   []repository.Node
	files   []pendingFile
	subdirs []pendingDir
	id      repository.ID
}

type pendingFile struct {
	idx int // position in dirTask.nodes
	job *fileJob
}

type pendingDir struct {
	idx  int
	task *dirTask
}

func (a *archiver) run(ctx context.Context, paths []string) (*runResult, error) {
	res := &runResult{}
	a.summary.Start = a.start
	a.filesCh = make(chan *fileJob, 256)
	a.blobsCh = make(chan *blobJob, a.opts.BlobWorkers)
	a.blobSlots = make(chan struct{}, a.opts.BlobWorkers)
	a.treeCh = make(chan *dirTask, 1024)

	g, gctx := errgroup.WithContext(ctx)
	var blobWG, fileWG sync.WaitGroup
	if !a.inlineBlobs {
		for range a.opts.BlobWorkers {
			blobWG.Add(1)
			g.Go(func() error { defer blobWG.Done(); return a.blobWorker(gctx) })
		}
	}
	for range a.opts.FileWorkers {
		fileWG.Add(1)
		g.Go(func() error { defer fileWG.Done(); return a.fileWorker(gctx) })
	}
	var root *dirTask
	treeDone := make(chan error, 1)
	g.Go(func() error {
		err := a.treeFinisher(gctx)
		treeDone <- err
		return err
	})
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	scanDone := make(chan struct{})
	if a.opts.Progress != nil {
		go func() { defer close(scanDone); a.scan(gctx, paths) }()
		go func() {
			defer close(progressDone)
			t := time.NewTicker(a.opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					a.report(false)
				case <-stopProgress:
					return
				}
			}
		}()
	} else {
		close(progressDone)
		close(scanDone)
	}
	g.Go(func() error {
		var err error
		root, err = a.walkRoots(gctx, paths)
		close(a.filesCh)
		go func() { fileWG.Wait(); close(a.blobsCh) }()
		close(a.treeCh)
		return err
	})
	err := g.Wait() // cancels gctx, which ends the scan
	close(stopProgress)
	<-progressDone
	<-scanDone
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	a.mu.Lock()
	res.Summary = a.summary
	res.Warnings = a.warnings
	a.mu.Unlock()
	res.Summary.Errors = int(a.errCount.Load())
	if err != nil {
		return res, err
	}
	res.rootID = root.id
	return res, nil
}

func (a *archiver) report(final bool) {
	if a.opts.Progress == nil {
		return
	}
	cur, _ := a.current.Load().(string)
	st := a.repo.Stats()
	a.opts.Progress(Progress{
		FilesDone: a.filesDone.Load(), FilesTotal: a.filesTotal.Load(),
		BytesDone: a.bytesDone.Load(), BytesTotal: a.bytesTotal.Load(),
		ScanDone: a.scanDone.Load() || final, BytesAdded: st.BytesRaw - a.before.BytesRaw,
		Errors: a.errCount.Load(), Elapsed: a.opts.Now().Sub(a.start), Current: cur,
	})
}

func (a *archiver) warn(path string, err error) {
	a.errCount.Add(1)
	a.opts.Warn(path, err)
}

// cleanPaths makes paths absolute and drops ones inside another.
func cleanPaths(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no paths to back up")
	}
	var out []string
	for _, p := range in {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		out = append(out, abs)
	}
	sort.Strings(out)
	var kept []string
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if p == last || strings.HasPrefix(p, strings.TrimSuffix(last, "/")+"/") {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// walkRoots builds the virtual directories leading to each path and walks
// the paths themselves.
func (a *archiver) walkRoots(ctx context.Context, paths []string) (*dirTask, error) {
	type trie struct {
		children map[string]*trie
		leaf     bool
	}
	root := &trie{children: map[string]*trie{}}
	for _, p := range paths {
		t := root
		if p == "/" {
			t.leaf = true
			continue
		}
		for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			n := t.children[c]
			if n == nil {
				n = &trie{children: map[string]*trie{}}
				t.children[c] = n
			}
			t = n
		}
		t.leaf = true
	}
	if root.leaf {
		var st unix.Stat_t
		if err := unix.Lstat("/", &st); err != nil {
			return nil, fmt.Errorf("stat /: %w", err)
		}
		task, _, err := a.walkDir(ctx, "/", &st, false)
		return task, err
	}
	var build func(dir string, t *trie) (*dirTask, error)
	build = func(dir string, t *trie) (*dirTask, error) {
		task := &dirTask{path: dir}
		names := make([]string, 0, len(t.children))
		for n := range t.children {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			child := t.children[name]
			p := filepath.Join(dir, name)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				a.warn(p, err)
				continue
			}
			if child.leaf {
				if err := a.addEntry(ctx, task, p, name, &st, st.Dev); err != nil {
					return nil, err
				}
				continue
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				a.warn(p, errors.New("not a directory"))
				continue
			}
			sub, err := build(p, child)
			if err != nil {
				return nil, err
			}
			task.nodes = append(task.nodes, nodeFromStat(name, &st, a.names))
			task.subdirs = append(task.subdirs, pendingDir{idx: len(task.nodes) - 1, task: sub})
		}
		if err := a.queueTree(ctx, task); err != nil {
			return nil, err
		}
		return task, nil
	}
	return build("/", root)
}

func (a *archiver) queueTree(ctx context.Context, t *dirTask) error {
	select {
	case a.treeCh <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// walkDir reads one real directory and queues its tree. It returns the
// task, whether the directory should be kept (false when excluded and
// nothing inside was included), and an error only for fatal problems.
func (a *archiver) walkDir(ctx context.Context, dir string, st *unix.Stat_t, excluded bool) (*dirTask, bool, error) {
	task := &dirTask{path: dir}
	a.mu.Lock()
	a.summary.Dirs++
	a.mu.Unlock()
	fd, err := openDir(dir)
	var entries []dirEntry
	if err == nil {
		defer unix.Close(fd)
		entries, err = readDir(fd, a.dirBuf)
	}
	if err != nil {
		a.warn(dir, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		p := childPath(dir, e.name)
		// A regular file the cache does not know is opened anyway: its
		// metadata and extended attributes come from the open file
		// (saveFile), not from a stat and a listxattr by path here.
		// With a size limit every file is stat'ed: its size decides.
		newFile := e.typ == unix.DT_REG && !a.opts.Cache.Known(p) && a.opts.ExcludeLargerThan <= 0
		var cst unix.Stat_t
		if !newFile {
			if err := unix.Fstatat(fd, e.name, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				a.warn(p, err)
				continue
			}
		}
		action := a.opts.Matcher.Match(p)
		isDir := !newFile && cst.Mode&unix.S_IFMT == unix.S_IFDIR
		childExcluded := excluded
		switch action {
		case pattern.ExcludeNoRecurse:
			continue
		case pattern.Exclude:
			if !isDir || !a.opts.Matcher.HasIncludes() {
				continue
			}
			childExcluded = true
		case pattern.Include:
			childExcluded = false
		}
		if childExcluded && !isDir {
			continue
		}
		if childExcluded {
			sub, keep, err := a.walkDir(ctx, p, &cst, true)
			if err != nil {
				return nil, false, err
			}
			if keep {
				task.nodes = append(task.nodes, nodeFromStat(e.name, &cst, a.names))
				task.subdirs = append(task.subdirs, pendingDir{idx: len(task.nodes) - 1, task: sub})
			}
			continue
		}
		if newFile {
			n := repository.Node{Name: repository.Bytes(e.name), Type: repository.NodeFile}
			if err := a.queueFile(ctx, task, p, n, true); err != nil {
				return nil, false, err
			}
			continue
		}
		if err := a.addEntry(ctx, task, p, e.name, &cst, st.Dev); err != nil {
			return nil, false, err
		}
	}
	if excluded && len(task.nodes) == 0 {
		return task, false, nil
	}
	if err := a.queueTree(ctx, task); err != nil {
		return nil, false, err
	}
	return task, true, nil
}

// addEntry adds one non-excluded entry to task: a subdirectory is walked,
// a regular file is queued or taken from the cache.
func (a *archiver) addEntry(ctx context.Context, task *dirTask, p, name string, st *unix.Stat_t, parentDev uint64) error {
	n := nodeFromStat(name, st, a.names)
	if n.Type == repository.NodeSocket {
		return nil // sockets cannot be restored; skipped like borg and restic do
	}
	if x, err := readXattrs(p, -1, &a.xattrBuf); err != nil {
		a.warn(p, fmt.Errorf("read extended attributes: %w", err))
	} else {
		n.Xattrs = x
	}
	switch n.Type {
	case repository.NodeDir:
		if skip, err := a.skipDir(p); err != nil {
			a.warn(p, err)
		} else if skip {
			return nil
		}
		if a.opts.OneFileSystem && st.Dev != parentDev && p != "/" {
			empty := &dirTask{path: p}
			if err := a.queueTree(ctx, empty); err != nil {
				return err
			}
			task.nodes = append(task.nodes, n)
			task.subdirs = append(task.subdirs, pendingDir{idx: len(task.nodes) - 1, task: empty})
			return nil
		}
		sub, _, err := a.walkDir(ctx, p, st, false)
		if err != nil {
			return err
		}
		task.nodes = append(task.nodes, n)
		task.subdirs = append(task.subdirs, pendingDir{idx: len(task.nodes) - 1, task: sub})
	case repository.NodeSymlink:
		target, err := readlink(p)
		if err != nil {
			a.warn(p, err)
			return nil
		}
		n.LinkTarget = repository.Bytes(target)
		task.nodes = append(task.nodes, n)
	case repository.NodeFile:
		if a.opts.ExcludeLargerThan > 0 && int64(n.Size) > a.opts.ExcludeLargerThan {
			return nil
		}
		if content, ok := a.opts.Cache.Lookup(p, &n); ok && a.allKnown(content) {
			n.Content = content
			if !a.opts.DryRun {
				a.opts.Cache.Store(p, &n, content)
			}
			a.mu.Lock()
			a.summary.FilesUnchanged++
			a.summary.BytesTotal += int64(n.Size)
			a.mu.Unlock()
			a.filesDone.Add(1)
			a.bytesDone.Add(int64(n.Size))
			task.nodes = append(task.nodes, n)
			return nil
		}
		return a.queueFile(ctx, task, p, n, false)
	default:
		task.nodes = append(task.nodes, n)
	}
	return nil
}

// queueFile adds the regular file p to task and queues it for a file
// worker; openXattrs: its extended attributes are still to be read (from
// the open file).
func (a *archiver) queueFile(ctx context.Context, task *dirTask, p string, n repository.Node, openXattrs bool) error {
	task.nodes = append(task.nodes, n)
	// The job owns a copy of the node; the finisher copies it back
	// (task.nodes may be reallocated meanwhile).
	job := &fileJob{path: p, node: &repository.Node{}, res: make(chan error, 1), openXattrs: openXattrs}
	*job.node = n
	task.files = append(task.files, pendingFile{idx: len(task.nodes) - 1, job: job})
	select {
	case a.filesCh <- job:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *archiver) allKnown(ids []repository.ID) bool {
	for _, id := range ids {
		if !a.repo.HasBlob(repository.BlobHandle{Type: repository.DataBlob, ID: id}) {
			return false
		}
	}
	return true
}

// skipDir applies --exclude-caches and --exclude-if-present.
func (a *archiver) skipDir(dir string) (bool, error) {
	if a.opts.ExcludeCaches {
		f, err := os.Open(filepath.Join(dir, "CACHEDIR.TAG"))
		if err == nil {
			buf := make([]byte, len(cacheDirTagSignature))
			_, rerr := io.ReadFull(f, buf)
			f.Close()
			if rerr == nil && string(buf) == cacheDirTagSignature {
				return true, nil
			}
		}
	}
	for _, name := range a.opts.ExcludeIfPresent {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err == nil {
			return true, nil
		}
	}
	return false, nil
}

func readlink(p string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func currentUsername() string {
	return newIDNames().user(uint32(os.Getuid()))
}
