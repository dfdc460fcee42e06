package mount

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// DefaultBlobCacheBytes is the plaintext of segments a mount keeps:
// eight of the 2 MiB segments small files share, or four of the largest
// chunks (4 MiB), enough for the reads the kernel has in flight (its
// read-ahead of up to 1 MiB per file, 12 of them in the background);
// the kernel's page cache keeps what was read. The heap of a `hostd
// backup` process is held near 72 MiB (cmd/hostd's limitHeap): with
// 32 MiB here a read of the Go tree through the view ran the collector
// more than 50 times, with 16 MiB under 20 times, and took 0.8x the time.
const DefaultBlobCacheBytes = 16 << 20

// cacheTimeout is how long the kernel may keep names and attributes:
// a snapshot never changes, and the view is built once at mount.
const cacheTimeout = time.Hour

// Options configure Mount.
type Options struct {
	// Filter selects the snapshots shown (empty: all).
	Filter backup.SnapshotFilter
	// Limits bound how deep directories nest (MaxDepth; 0:
	// repository.DefaultMaxTreeDepth). Nothing walks a whole snapshot,
	// so MaxNodes is not used.
	Limits repository.Limits
	// BlobCacheBytes bounds the cache of decoded segments of file data
	// (0: DefaultBlobCacheBytes); a segment larger than a quarter of it
	// is decoded for each read and not kept.
	BlobCacheBytes int
	// AllowOther lets users other than the one mounting read the view
	// (fusermount's allow_other; needs user_allow_other in
	// /etc/fuse.conf unless run as root).
	AllowOther bool
	// Logger receives errors reading the repository (default: discard);
	// the reader sees EIO.
	Logger *slog.Logger
	// Debug logs every FUSE request (go-fuse's debug output).
	Debug bool
}

// Mounted is a mounted view; Unmount ends it.
type Mounted struct {
	srv *fuse.Server
	// Snapshots is how many snapshots the view shows.
	Snapshots int
}

// Unmount unmounts the view (it fails while a process uses it).
func (m *Mounted) Unmount() error { return m.srv.Unmount() }

// Wait returns once the view is unmounted (by Unmount or fusermount -u).
func (m *Mounted) Wait() { m.srv.Wait() }

// Mount shows the snapshots of repo that o.Filter selects at mountpoint,
// read-only, and returns once the mount is ready. The snapshots are
// those listed now; the view does not follow later backups.
func Mount(ctx context.Context, repo *repository.Repository, mountpoint string, o Options) (*Mounted, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BlobCacheBytes <= 0 {
		o.BlobCacheBytes = DefaultBlobCacheBytes
	}
	if o.Limits.MaxDepth <= 0 {
		o.Limits.MaxDepth = repository.DefaultMaxTreeDepth
	}
	all, bad, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("mount: list snapshots: %w", err)
	}
	for id, err := range bad {
		o.Logger.Warn("snapshot unreadable", "snapshot", id.Short(), "err", err)
	}
	var snaps []*repository.Snapshot
	for _, s := range all {
		if o.Filter.Match(s.Hostname, s.Paths, s.Tags) {
			snaps = append(snaps, s)
		}
	}
	v := &view{repo: repo, log: o.Logger, maxDepth: o.Limits.MaxDepth,
		trees: newTreeCache(treeCacheNodes), segs: newSegCache(repo, o.BlobCacheBytes)}
	root := &rootDir{v: v, snaps: snaps}
	timeout := cacheTimeout
	mo := fuse.MountOptions{
		FsName:     "hostd-backup",
		Name:       "hostd",
		Options:    []string{"ro", "default_permissions"},
		AllowOther: o.AllowOther,
		Debug:      o.Debug,
		// Contents never change: keep names and data in the kernel
		// (FOPEN_KEEP_CACHE on open), and read ahead in large requests:
		// MaxWrite is also the largest read (go-fuse's default: 128 KiB).
		MaxReadAhead: 1 << 20,
		MaxWrite:     1 << 20,
	}
	srv, err := fs.Mount(mountpoint, root, &fs.Options{MountOptions: mo,
		EntryTimeout: &timeout, AttrTimeout: &timeout, NegativeTimeout: &timeout})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	return &Mounted{srv: srv, Snapshots: len(snaps)}, nil
}

// view is what every node of a mount shares.
type view struct {
	repo     *repository.Repository
	log      *slog.Logger
	maxDepth int
	trees    *treeCache
	segs     *segCache
}

// inoOf derives a stable inode number from parts, so a name keeps its
// number across lookups and a hard link's names share one (ino must not
// be 0 or 1, the root's).
func inoOf(parts ...[]byte) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	ino := h.Sum64()
	if ino < 2 {
		ino += 2
	}
	return ino
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// safeName makes a host name or tag usable as a file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." {
		return "_" + s
	}
	return s
}

// rootDir holds snapshots/, hosts/ and tags/, built when mounted.
type rootDir struct {
	fs.Inode
	v     *view
	snaps []*repository.Snapshot // oldest first
}

var _ fs.NodeOnAdder = (*rootDir)(nil)
var _ fs.NodeGetattrer = (*rootDir)(nil)

func (r *rootDir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	out.Nlink = 2
	out.SetTimeout(cacheTimeout)
	return 0
}

// OnAdd builds the static part of the view.
func (r *rootDir) OnAdd(ctx context.Context) {
	newest := time.Time{}
	if len(r.snaps) > 0 {
		newest = r.snaps[len(r.snaps)-1].Time
	}
	mkdir := func(parent *fs.Inode, name string) *fs.Inode {
		ch := parent.NewPersistentInode(ctx, &staticDir{mtime: newest}, fs.StableAttr{Mode: fuse.S_IFDIR, Ino: inoOf([]byte("dir"), []byte(parent.Path(nil)), []byte(name))})
		parent.AddChild(name, ch, true)
		return ch
	}
	symlink := func(parent *fs.Inode, name, target string, t time.Time) {
		l := &fs.MemSymlink{Data: []byte(target)}
		l.Attr.Mode = fuse.S_IFLNK | 0o777
		l.Attr.Nlink = 1
		l.Attr.Size = uint64(len(target))
		l.Attr.SetTimes(&t, &t, &t)
		ch := parent.NewPersistentInode(ctx, l, fs.StableAttr{Mode: fuse.S_IFLNK, Ino: inoOf([]byte("link"), []byte(parent.Path(nil)), []byte(name))})
		parent.AddChild(name, ch, true)
	}
	snapDir := mkdir(&r.Inode, "snapshots")
	hosts := mkdir(&r.Inode, "hosts")
	tags := mkdir(&r.Inode, "tags")

	// Snapshots are named by their short ID, or the full one when two
	// share it.
	short := map[string]int{}
	for _, s := range r.snaps {
		short[s.ID().Short()]++
	}
	names := make([]string, len(r.snaps))
	for i, s := range r.snaps {
		names[i] = s.ID().Short()
		if short[names[i]] > 1 {
			names[i] = s.ID().String()
		}
		id := s.ID()
		sn := &node{v: r.v, snap: id, depth: 0, n: repository.Node{Type: repository.NodeDir, Mode: 0o555,
			MTimeNs: s.Time.UnixNano(), Subtree: &s.Tree}}
		ch := snapDir.NewPersistentInode(ctx, sn, fs.StableAttr{Mode: fuse.S_IFDIR, Ino: inoOf([]byte("snapshot"), id[:])})
		snapDir.AddChild(names[i], ch, true)
	}
	if len(r.snaps) > 0 {
		symlink(snapDir, "latest", names[len(names)-1], newest)
	}
	// hosts/HOST/ID and tags/TAG/ID link to snapshots/ID; latest to the
	// newest of each.
	group := func(dir *fs.Inode, key func(s *repository.Snapshot) []string) {
		by := map[string][]int{}
		for i, s := range r.snaps {
			for _, k := range key(s) {
				by[safeName(k)] = append(by[safeName(k)], i)
			}
		}
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			is := by[k]
			last := r.snaps[is[len(is)-1]].Time
			d := dir.NewPersistentInode(ctx, &staticDir{mtime: last}, fs.StableAttr{Mode: fuse.S_IFDIR, Ino: inoOf([]byte("dir"), []byte(dir.Path(nil)), []byte(k))})
			dir.AddChild(k, d, true)
			for _, i := range is {
				symlink(d, names[i], "../../snapshots/"+names[i], r.snaps[i].Time)
			}
			symlink(d, "latest", "../../snapshots/"+names[is[len(is)-1]], last)
		}
	}
	group(hosts, func(s *repository.Snapshot) []string { return []string{s.Hostname} })
	group(tags, func(s *repository.Snapshot) []string { return s.Tags })
}

// staticDir is a directory of the view's own (snapshots/, hosts/HOST/).
type staticDir struct {
	fs.Inode
	mtime time.Time
}

var _ fs.NodeGetattrer = (*staticDir)(nil)

func (d *staticDir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	out.Nlink = 2
	out.SetTimes(&d.mtime, &d.mtime, &d.mtime)
	out.SetTimeout(cacheTimeout)
	return 0
}
