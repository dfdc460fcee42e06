package restorer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/pattern"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// ErrTargetNotEmpty is returned when the target has entries and Overwrite
// is not set.
var ErrTargetNotEmpty = errors.New("restore target is not empty")

// Options configure a restore.
type Options struct {
	Target    string   // directory to restore into (created if missing)
	Include   []string // snapshot paths to restore (with what is below them); empty: everything
	Overwrite bool     // allow a non-empty target, replacing existing files
	// Workers is how many pack spans are read and restored at once;
	// default GOMAXPROCS. For a repository on object storage or a REST
	// server it is how many packs are read at once (default
	// RemoteWorkers), each as one stream whose blobs are written as they
	// arrive (see RemoteWorkers).
	Workers int
	// Progress, when set, is called about every ProgressInterval and at
	// the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Warn             func(path string, err error)
	Now              func() time.Time
	// Limits bound the walk of the snapshot's trees (zero: the
	// defaults), so a hostile repository cannot grow the plan without
	// bound.
	Limits repository.Limits
	// Exclude leaves out the snapshot paths these borg-style patterns
	// match (and what is below them), as create's --exclude.
	Exclude []string
	// Verify reads every restored file back and checks each of its
	// chunks against the snapshot's content IDs, and its size.
	Verify bool
}

// Progress is a live view of a restore.
type Progress struct {
	FilesDone, FilesTotal int64
	BytesDone, BytesTotal int64
	Errors                int64
	Elapsed               time.Duration
}

// Summary is what a restore did.
type Summary struct {
	Files    int64         `json:"files"`
	Dirs     int64         `json:"dirs"`
	Links    int64         `json:"hardlinks"`
	Special  int64         `json:"special"` // symlinks, FIFOs, devices
	Bytes    int64         `json:"bytes"`
	Errors   int64         `json:"errors"`
	Duration time.Duration `json:"duration_ns"`
	// Verified counts the files read back and found identical (Verify).
	Verified int64 `json:"verified,omitempty"`
}

type fileJob struct {
	path string
	node *repository.Node
}

type linkJob struct {
	path, target string
	node         *repository.Node
}

type dirMeta struct {
	path string
	node *repository.Node
	// onPath marks a directory restored only because an included path
	// is below it: created and given its metadata, but not counted.
	onPath bool
}

// plan is a restore worked out from the snapshot, before anything is
// written.
type plan struct {
	dirs    []dirMeta // in walk order: parents before their entries
	special []fileJob // symlinks, FIFOs, devices
	files   []fileJob
	links   []linkJob
	totalF  int64
	totalB  int64
	matched bool // something is selected (always, without includes)
}

type restorer struct {
	repo   *repository.Repository
	opts   Options
	root   bool
	owners *owners
	sum    Summary
	bytes  atomic.Int64
	files  atomic.Int64
	errs   atomic.Int64
	totalB int64
	totalF int64
	// token makes this run's temporary names unique.
	token string
	// failed holds the paths warned about (not verified).
	failed sync.Map
	// maxSpan and maxGap shape the reads of packs (see restoreContents);
	// remote repositories are read as streams (restoreStreams).
	maxSpan, maxGap uint32
	remote          bool
}

// TempPrefix starts the names of files being restored. A file is written
// under a temporary name (TempPrefix, a token of the run and a number) in
// its directory and renamed to its real name once all its content is
// written and verified. A restore interrupted hard leaves only such
// names; the next restore into the same directories removes them.
const TempPrefix = ".hostd-restore-"

// Run restores snap into opts.Target.
func Run(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, opts Options) (*Summary, error) {
	remote := isRemote(repo)
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
		if remote {
			opts.Workers = RemoteWorkers
		}
	}
	if opts.Warn == nil {
		opts.Warn = func(string, error) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	if opts.Target == "" {
		return nil, errors.New("restore: no target directory")
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, err
	}
	missing, err := checkTarget(target, opts.Overwrite)
	if err != nil {
		return nil, err
	}
	start := opts.Now()
	var tok [6]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	r := &restorer{repo: repo, opts: opts, root: os.Geteuid() == 0, owners: newOwners(), token: hex.EncodeToString(tok[:]),
		maxSpan: maxSpan, maxGap: maxGap, remote: remote}
	includes := make([]string, 0, len(opts.Include))
	for _, p := range opts.Include {
		includes = append(includes, filepath.Clean("/"+p))
	}
	rules, err := pattern.ParseExcludes(opts.Exclude)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	excl := pattern.NewMatcher(rules...)

	// Pass 1: work out what to restore. Nothing is written before the
	// arguments are known to be good: a failed restore leaves the target
	// as it was.
	pl, err := makePlan(ctx, repo, snap, target, includes, excl, opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("restore: snapshot %s: %w", snap.ID().Short(), err)
	}
	if !pl.matched {
		return nil, fmt.Errorf("restore: include paths %v match nothing in snapshot %s", opts.Include, snap.ID().Short())
	}
	r.totalF, r.totalB = pl.totalF, pl.totalB
	// Pass 2: directories (parents before their entries), then special
	// files, made while the contents are planned (on another core).
	made := make(chan error, 1)
	go func() {
		if missing {
			if err := os.MkdirAll(target, 0o700); err != nil {
				made <- fmt.Errorf("create restore target: %w", err)
				return
			}
		} else {
			r.removeTemps(target)
		}
		for _, d := range pl.dirs {
			if err := r.mkdir(d.path); err != nil {
				made <- fmt.Errorf("restore: %w", err)
				return
			}
			if !d.onPath {
				r.sum.Dirs++
			}
		}
		for _, s := range pl.special {
			if err := r.special(s.path, s.node); err != nil {
				r.warn(s.path, err)
				continue
			}
			r.sum.Special++
		}
		made <- nil
	}()
	cp := r.planContents(pl.files)
	// From a remote repository the packs are read from now on, while the
	// directories are made; nothing is written before they are.
	var st *streamer
	if rr, ok := repo.Backend().(backend.RangeReader); ok && remote {
		st = r.startStreams(ctx, rr, cp.byPack)
	}
	if err := <-made; err != nil {
		if st != nil {
			st.abort()
		}
		return nil, err
	}

	// Pass 3: file contents in parallel.
	stop := make(chan struct{})
	done := make(chan struct{})
	if opts.Progress != nil {
		go func() {
			defer close(done)
			t := time.NewTicker(opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					r.report(start)
				case <-stop:
					return
				}
			}
		}()
	} else {
		close(done)
	}
	err = r.restoreContents(ctx, cp, st)
	close(stop)
	<-done
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	// Pass 4: hard links, then directory metadata deepest first (those
	// on the way to included paths too, as the snapshot recorded them).
	for i, l := range pl.links {
		if r.opts.Overwrite {
			_ = os.Remove(l.path)
		}
		if err := os.Link(l.target, l.path); err != nil {
			// The first name may have failed; fall back to a copy.
			if ferr := r.restoreFile(ctx, l.path, l.node, len(pl.files)+i); ferr != nil {
				r.warn(l.path, ferr)
			}
			continue
		}
		r.sum.Links++
	}
	for i := len(pl.dirs) - 1; i >= 0; i-- {
		d := pl.dirs[i]
		if err := r.applyMeta(d.path, d.node); err != nil {
			r.warn(d.path, err)
		}
	}
	if opts.Verify {
		if err := r.verify(ctx, pl); err != nil {
			return nil, fmt.Errorf("restore: verify: %w", err)
		}
	}
	r.sum.Files = r.files.Load()
	r.sum.Bytes = r.bytes.Load()
	r.sum.Errors = r.errs.Load()
	r.sum.Duration = opts.Now().Sub(start)
	r.report(start)
	return &r.sum, nil
}

func (r *restorer) report(start time.Time) {
	if r.opts.Progress == nil {
		return
	}
	r.opts.Progress(Progress{
		FilesDone: r.files.Load(), FilesTotal: r.totalF,
		BytesDone: r.bytes.Load(), BytesTotal: r.totalB,
		Errors: r.errs.Load(), Elapsed: r.opts.Now().Sub(start),
	})
}

func (r *restorer) warn(p string, err error) {
	r.failed.Store(p, true)
	r.errs.Add(1)
	r.opts.Warn(p, err)
}

// makePlan walks snap and lists what a restore into target creates:
// everything, or with includes the included paths, what is below them and
// the directories leading to them. It only reads the repository.
//
// The walk counts what it expands against lim (repository.Budget checks
// each tree's entries before they are planned), so the plan of a DAG of
// trees that names the same subtrees over and over stops at the limit
// instead of growing until memory runs out.
func makePlan(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, target string, includes []string, excl *pattern.Matcher, lim repository.Limits) (*plan, error) {
	pl := &plan{matched: len(includes) == 0}
	seenInode := map[[2]uint64]string{}
	walk := repo.WalkTreeBudget
	if len(includes) == 0 {
		walk = repo.WalkTreePrefetch // the whole snapshot: read its trees ahead
	}
	err := walk(ctx, snap.Tree, "/", repository.NewBudget(lim), func(p string, n *repository.Node) error {
		sel := selected(p, includes)
		if sel == skip {
			return repository.ErrSkipDir
		}
		if a := excl.Match(p); a == pattern.Exclude || a == pattern.ExcludeNoRecurse {
			if n.Type == repository.NodeDir {
				return repository.ErrSkipDir
			}
			return nil
		}
		dst := filepath.Join(target, p)
		if sel == ancestor {
			// A directory on the way to an included path.
			if n.Type == repository.NodeDir {
				pl.dirs = append(pl.dirs, dirMeta{path: dst, node: n, onPath: true})
			}
			return nil
		}
		pl.matched = true
		switch n.Type {
		case repository.NodeDir:
			pl.dirs = append(pl.dirs, dirMeta{path: dst, node: n})
		case repository.NodeFile:
			if n.Links > 1 {
				k := [2]uint64{n.Device, n.Inode}
				if first, ok := seenInode[k]; ok {
					pl.links = append(pl.links, linkJob{path: dst, target: first, node: n})
					return nil
				}
				seenInode[k] = dst
			}
			pl.files = append(pl.files, fileJob{dst, n})
			pl.totalF++
			pl.totalB += int64(n.Size)
		default:
			pl.special = append(pl.special, fileJob{dst, n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pl, nil
}

const (
	skip = iota
	ancestor
	inside
)

func selected(p string, includes []string) int {
	if len(includes) == 0 {
		return inside
	}
	res := skip
	for _, inc := range includes {
		switch {
		case inc == "/" || p == inc || strings.HasPrefix(p, inc+"/"):
			return inside
		case strings.HasPrefix(inc, p+"/"):
			res = ancestor
		}
	}
	return res
}

// checkTarget reports whether target is missing (Run creates it once the
// restore's arguments are checked) and fails if it has entries and
// overwrite is not set. It changes nothing.
func checkTarget(target string, overwrite bool) (missing bool, err error) {
	f, err := os.Open(target)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("open restore target: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read restore target %s: %w", target, err)
	}
	if len(names) > 0 && !overwrite {
		return false, fmt.Errorf("%s: %w", target, ErrTargetNotEmpty)
	}
	return false, nil
}

func (r *restorer) mkdir(p string) error {
	err := os.Mkdir(p, 0o700)
	if errors.Is(err, os.ErrExist) {
		if fi, serr := os.Lstat(p); serr == nil && fi.IsDir() {
			r.removeTemps(p)
			return nil
		}
		if r.opts.Overwrite {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			err = os.Mkdir(p, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}

// removeTemps removes the temporary files an interrupted restore left in
// dir, an existing directory (a new one has none: a first restore pays
// nothing for this).
func (r *restorer) removeTemps(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			if !strings.HasPrefix(name, TempPrefix) {
				continue
			}
			p := filepath.Join(dir, name)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				_ = os.Remove(p)
			}
		}
		if err != nil || len(names) == 0 {
			return
		}
	}
}

// tempName returns the temporary name of the i-th file written at p.
func (r *restorer) tempName(p string, i int) string {
	return filepath.Join(filepath.Dir(p), TempPrefix+r.token+"-"+strconv.Itoa(i))
}

func (r *restorer) clear(p string) {
	if r.opts.Overwrite {
		if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
			_ = os.Remove(p)
		}
	}
}

func (r *restorer) special(p string, n *repository.Node) error {
	r.clear(p)
	var err error
	switch n.Type {
	case repository.NodeSymlink:
		err = os.Symlink(string(n.LinkTarget), p)
	case repository.NodeFIFO:
		err = unix.Mkfifo(p, 0o600)
	case repository.NodeCharDev, repository.NodeBlockDev:
		if !r.root {
			return fmt.Errorf("device node needs root, skipped")
		}
		mode := uint32(unix.S_IFCHR)
		if n.Type == repository.NodeBlockDev {
			mode = unix.S_IFBLK
		}
		err = unix.Mknod(p, mode|0o600, int(n.Rdev))
	default:
		return fmt.Errorf("%s cannot be restored, skipped", n.Type)
	}
	if err != nil {
		return err
	}
	return r.applyMeta(p, n)
}

// restoreFile writes one regular file and its metadata, reading its
// blobs one by one (a hard link whose first name could not be linked).
// Like the pack-ordered restore it writes to a temporary name and renames
// the file into place only once every blob is verified.
func (r *restorer) restoreFile(ctx context.Context, p string, n *repository.Node, i int) error {
	tmp := r.tempName(p, i)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var off int64
	var buf []byte
	err = func() error {
		for _, id := range n.Content {
			data, err := r.repo.LoadBlob(ctx, repository.BlobHandle{Type: repository.DataBlob, ID: id}, buf)
			if err != nil {
				return err
			}
			if n.Sparse {
				err = writeSparseFd(int(f.Fd()), data, off)
			} else {
				_, err = f.WriteAt(data, off)
			}
			if err != nil {
				return err
			}
			off += int64(len(data))
			buf = data
		}
		if uint64(off) != n.Size {
			return fmt.Errorf("restored %d bytes, snapshot records %d", off, n.Size)
		}
		if n.Sparse && off > 0 {
			return f.Truncate(off)
		}
		return nil
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.applyMeta(tmp, n)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("left out: %w", err)
	}
	r.bytes.Add(off)
	r.files.Add(1)
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// applyMeta sets owner, mode, extended attributes and times. Owner
// changes need root and are skipped silently without it.
func (r *restorer) applyMeta(p string, n *repository.Node) error {
	var errs []error
	uid, gid := r.owners.uid(n), r.owners.gid(n)
	if err := unix.Lchown(p, uid, gid); err != nil && r.root {
		errs = append(errs, fmt.Errorf("chown: %w", err))
	}
	if n.Type != repository.NodeSymlink {
		if err := unix.Chmod(p, n.Mode&0o7777); err != nil {
			errs = append(errs, fmt.Errorf("chmod: %w", err))
		}
	}
	for _, x := range n.Xattrs {
		if err := unix.Lsetxattr(p, string(x.Name), []byte(x.Value), 0); err != nil {
			if !r.root && !strings.HasPrefix(string(x.Name), "user.") {
				continue
			}
			errs = append(errs, fmt.Errorf("set xattr %q: %w", string(x.Name), err))
		}
	}
	if err := r.applyTimes(p, n); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// applyFdMeta sets owner, mode (after the owner: chown clears set-id
// bits) and extended attributes of an open regular file whose current
// state is st; owner and mode are only changed where they differ.
func (r *restorer) applyFdMeta(fd int, n *repository.Node, st *unix.Stat_t) error {
	var errs []error
	uid, gid := r.owners.uid(n), r.owners.gid(n)
	chowned := false
	if int(st.Uid) != uid || int(st.Gid) != gid {
		chowned = true
		if err := unix.Fchown(fd, uid, gid); err != nil && r.root {
			errs = append(errs, fmt.Errorf("chown: %w", err))
		}
	}
	if chowned || st.Mode&0o7777 != n.Mode&0o7777 {
		if err := unix.Fchmod(fd, n.Mode&0o7777); err != nil {
			errs = append(errs, fmt.Errorf("chmod: %w", err))
		}
	}
	for _, x := range n.Xattrs {
		if err := unix.Fsetxattr(fd, string(x.Name), []byte(x.Value), 0); err != nil {
			if !r.root && !strings.HasPrefix(string(x.Name), "user.") {
				continue
			}
			errs = append(errs, fmt.Errorf("set xattr %q: %w", string(x.Name), err))
		}
	}
	return errors.Join(errs...)
}

// applyFdTimes sets the times of an open file (utimensat with a NULL
// path acts on the descriptor).
func applyFdTimes(fd int, n *repository.Node) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(n.ATimeNs), unix.NsecToTimespec(n.MTimeNs)}
	if n.ATimeNs == 0 {
		ts[0] = ts[1]
	}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fmt.Errorf("set times: %w", e)
	}
	return nil
}

func (r *restorer) applyTimes(p string, n *repository.Node) error {
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATimeNs), unix.NsecToTimespec(n.MTimeNs)}
	if n.ATimeNs == 0 {
		ts[0] = ts[1]
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// owners maps recorded user/group names to local IDs, falling back to the
// recorded numbers.
type owners struct {
	mu     sync.Mutex
	users  map[string]int
	groups map[string]int
}

func newOwners() *owners { return &owners{users: map[string]int{}, groups: map[string]int{}} }

func (o *owners) uid(n *repository.Node) int {
	if n.User == "" {
		return int(n.UID)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.users[n.User]; ok {
		return id
	}
	id := int(n.UID)
	if u, err := user.Lookup(n.User); err == nil {
		if v, err := strconv.Atoi(u.Uid); err == nil {
			id = v
		}
	}
	o.users[n.User] = id
	return id
}

func (o *owners) gid(n *repository.Node) int {
	if n.Group == "" {
		return int(n.GID)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.groups[n.Group]; ok {
		return id
	}
	id := int(n.GID)
	if g, err := user.LookupGroup(n.Group); err == nil {
		if v, err := strconv.Atoi(g.Gid); err == nil {
			id = v
		}
	}
	o.groups[n.Group] = id
	return id
}
