package mount

import (
	"context"
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// node is one entry of a snapshot (or a snapshot's root directory).
type node struct {
	fs.Inode
	v     *view
	snap  repository.ID
	depth int             // directory levels below the snapshot's root
	n     repository.Node // immutable: shared with the tree it came from

	// Where the file's blobs are, from the index at the first read.
	once    sync.Once
	offsets []uint64              // offsets[i]: where blob i starts; last: the end
	locs    []repository.Location // locs[i]: blob i's place in the packs
	offErr  error
}

var (
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeReaddirer   = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeFlusher     = (*node)(nil)
	_ fs.NodeReader      = (*node)(nil)
	_ fs.NodeGetxattrer  = (*node)(nil)
	_ fs.NodeListxattrer = (*node)(nil)
)

// typeBits is the S_IF* type of a snapshot node.
func typeBits(t string) uint32 {
	switch t {
	case repository.NodeDir:
		return fuse.S_IFDIR
	case repository.NodeSymlink:
		return fuse.S_IFLNK
	case repository.NodeFIFO:
		return fuse.S_IFIFO
	case repository.NodeCharDev:
		return syscall.S_IFCHR
	case repository.NodeBlockDev:
		return syscall.S_IFBLK
	case repository.NodeSocket:
		return syscall.S_IFSOCK
	}
	return fuse.S_IFREG
}

// childIno is the inode number of child n of the directory with number
// parent: a hard-linked file's names share one (its device and inode
// when backed up, within one snapshot), every other name has its own.
func (d *node) childIno(n *repository.Node) uint64 {
	if n.Type == repository.NodeFile && n.Links > 1 && n.Inode != 0 {
		return inoOf([]byte("hardlink"), d.snap[:], u64(n.Device), u64(n.Inode))
	}
	return inoOf(u64(d.StableAttr().Ino), []byte(n.Name))
}

// tree loads the directory's entries; errors are logged and become EIO.
func (d *node) tree(ctx context.Context) (*repository.Tree, syscall.Errno) {
	if d.n.Type != repository.NodeDir || d.n.Subtree == nil {
		return nil, syscall.ENOTDIR
	}
	t, err := d.v.trees.load(ctx, d.v.repo, *d.n.Subtree)
	if err != nil {
		d.v.log.Error("read directory", "snapshot", d.snap.Short(), "path", d.Path(nil), "err", err)
		return nil, syscall.EIO
	}
	return t, 0
}

func (d *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.depth >= d.v.maxDepth {
		d.v.log.Error("read directory", "snapshot", d.snap.Short(), "path", d.Path(nil), "err", repository.ErrWalkLimit)
		return nil, syscall.EIO
	}
	t, errno := d.tree(ctx)
	if errno != 0 {
		return nil, errno
	}
	n := t.Find(name)
	if n == nil {
		return nil, syscall.ENOENT
	}
	ch := &node{v: d.v, snap: d.snap, depth: d.depth + 1, n: *n}
	ch.fill(&out.Attr)
	ino := d.childIno(n)
	out.Attr.Ino = ino
	out.SetEntryTimeout(cacheTimeout)
	out.SetAttrTimeout(cacheTimeout)
	return d.NewInode(ctx, ch, fs.StableAttr{Mode: typeBits(n.Type), Ino: ino}), 0
}

func (d *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	t, errno := d.tree(ctx)
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, 0, len(t.Nodes))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		list = append(list, fuse.DirEntry{Name: string(n.Name), Mode: typeBits(n.Type), Ino: d.childIno(n)})
	}
	return fs.NewListDirStream(list), 0
}

// fill sets a's fields as a restore would set the file's.
func (d *node) fill(a *fuse.Attr) {
	n := &d.n
	a.Mode = typeBits(n.Type) | n.Mode&0o7777
	a.Owner = fuse.Owner{Uid: n.UID, Gid: n.GID}
	a.Nlink = 1
	if n.Links > 1 && n.Type == repository.NodeFile {
		a.Nlink = uint32(min(n.Links, 1<<31))
	}
	switch n.Type {
	case repository.NodeFile:
		a.Size = n.Size
	case repository.NodeSymlink:
		a.Size = uint64(len(n.LinkTarget))
	case repository.NodeDir:
		a.Nlink = 2
	case repository.NodeCharDev, repository.NodeBlockDev:
		// FUSE carries the kernel's new_encode_dev form.
		maj, mnr := unix.Major(n.Rdev), unix.Minor(n.Rdev)
		a.Rdev = mnr&0xff | maj<<8 | (mnr&^0xff)<<12
	}
	a.Blocks = (a.Size + 511) / 512
	if n.Sparse {
		// Where its holes are is not known without reading it: say it
		// holds no blocks, as a file of holes would, so du and tar
		// --sparse treat it as sparse.
		a.Blocks = 0
	}
	a.Blksize = 4096
	mt := n.MTimeNs
	at, ct := n.ATimeNs, n.CTimeNs
	if at == 0 {
		at = mt
	}
	if ct == 0 {
		ct = mt
	}
	a.Mtime, a.Mtimensec = uint64(mt/1e9), uint32(mt%1e9)
	a.Atime, a.Atimensec = uint64(at/1e9), uint32(at%1e9)
	a.Ctime, a.Ctimensec = uint64(ct/1e9), uint32(ct%1e9)
}

func (d *node) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fill(&out.Attr)
	out.SetTimeout(cacheTimeout)
	return 0
}

func (d *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if d.n.Type != repository.NodeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(d.n.LinkTarget), 0
}

func (d *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range d.n.Xattrs {
		if string(x.Name) == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

func (d *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	size := 0
	for _, x := range d.n.Xattrs {
		size += len(x.Name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	off := 0
	for _, x := range d.n.Xattrs {
		off += copy(dest[off:], x.Name)
		dest[off] = 0
		off++
	}
	return uint32(size), 0
}

// Open tells the kernel that opens need no request: it then opens every
// file of the view without asking (FUSE's no_open, Linux 3.14 and later)
// and keeps what it read in its page cache across opens, as
// FOPEN_KEEP_CACHE would (nothing in the view changes). A file of a
// small segment is then read with one request instead of three.
// Writes are refused by the kernel (the mount is read-only).
func (d *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if d.n.Type != repository.NodeFile {
		return nil, 0, syscall.EINVAL
	}
	return nil, 0, syscall.ENOSYS
}

// Flush answers ENOSYS, so the kernel stops sending one on every close
// (there is nothing to write back).
func (d *node) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno { return syscall.ENOSYS }

// errShortContent: the index's blob lengths do not add up to the size
// the tree gives the file.
var errShortContent = errors.New("blob lengths in the index do not add up to the file's size")

// blobOffsets finds each of the file's blobs in the index and computes
// where each starts in the file.
func (d *node) blobOffsets() ([]uint64, []repository.Location, error) {
	d.once.Do(func() {
		offs := make([]uint64, 0, len(d.n.Content)+1)
		locs := make([]repository.Location, 0, len(d.n.Content))
		var pos uint64
		for _, id := range d.n.Content {
			loc, ok := d.v.repo.Index().Lookup(repository.BlobHandle{Type: repository.DataBlob, ID: id})
			if !ok {
				d.offErr = errors.New("blob " + id.Short() + " is not in the index")
				return
			}
			offs = append(offs, pos)
			locs = append(locs, loc)
			pos += uint64(loc.RawLength)
		}
		offs = append(offs, pos)
		if pos != d.n.Size {
			d.offErr = errShortContent
			return
		}
		d.offsets, d.locs = offs, locs
	})
	return d.offsets, d.locs, d.offErr
}

func (d *node) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if d.n.Type != repository.NodeFile {
		return nil, syscall.EINVAL
	}
	if off < 0 {
		return nil, syscall.EINVAL
	}
	pos := uint64(off)
	if pos >= d.n.Size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	offs, locs, err := d.blobOffsets()
	if err != nil {
		d.v.log.Error("read file", "snapshot", d.snap.Short(), "path", d.Path(nil), "err", err)
		return nil, syscall.EIO
	}
	// The blob holding pos: the last one starting at or before it.
	i := sort.Search(len(offs)-1, func(i int) bool { return offs[i+1] > pos })
	n := 0
	for n < len(dest) && i < len(d.n.Content) && pos < d.n.Size {
		b, seg, err := d.v.segs.blob(ctx, d.n.Content[i], locs[i])
		if err == nil && uint64(len(b)) != offs[i+1]-offs[i] {
			d.v.segs.release(seg)
			err = errors.New("blob " + d.n.Content[i].Short() + " is not as long as the index says")
		}
		if err != nil {
			d.v.log.Error("read file", "snapshot", d.snap.Short(), "path", d.Path(nil), "err", err)
			return nil, syscall.EIO
		}
		c := copy(dest[n:], b[pos-offs[i]:])
		d.v.segs.release(seg)
		n += c
		pos += uint64(c)
		i++
	}
	return fuse.ReadResultData(dest[:n]), 0
}
