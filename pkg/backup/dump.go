package backup

import (
	"archive/tar"
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// DumpOptions configure DumpTo.
type DumpOptions struct {
	// Archive is the format a directory is written in: "tar" (the
	// default) or "zip". A regular file is written as its bytes.
	Archive string
}

// Dump writes file p of snapshot to w, or a directory (or "/") as a tar
// archive.
func (r *Repository) Dump(ctx context.Context, snapshot, p string, w io.Writer) error {
	return r.DumpTo(ctx, snapshot, p, DumpOptions{}, w)
}

// DumpTo writes file p of snapshot to w as its bytes, or a directory
// with everything below it as an archive (o.Archive). Names in the
// archive are snapshot paths without the leading "/", so extracting it
// lays the files out as a restore does. tar keeps modes, owners (by
// number and name), modification times to the nanosecond, symlinks,
// hard links (as links to the first name), FIFOs, device nodes and
// extended attributes (PAX SCHILY.xattr records); zip keeps modes,
// times (to the second) and symlinks, and stores hard links as copies.
// The walk is bounded by OpenOptions.Limits.
func (r *Repository) DumpTo(ctx context.Context, snapshot, p string, o DumpOptions, w io.Writer) error {
	switch o.Archive {
	case "", "tar", "zip":
	default:
		return fmt.Errorf("dump: archive format %q: want tar or zip", o.Archive)
	}
	snap, err := r.repo.FindSnapshot(ctx, snapshot)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	p = path.Clean("/" + p)
	var n *repository.Node
	if p != "/" {
		if n, err = r.repo.FindNode(ctx, snap.Tree, p); err != nil {
			return fmt.Errorf("dump: %w", err)
		}
	}
	if n != nil && n.Type == repository.NodeFile {
		if err := r.dumpContent(ctx, n, w); err != nil {
			return fmt.Errorf("dump %s: %w", p, err)
		}
		return nil
	}
	if n != nil && n.Type != repository.NodeDir {
		return fmt.Errorf("dump %s: a %s is neither a regular file nor a directory", p, n.Type)
	}
	tree := snap.Tree
	if n != nil {
		tree = *n.Subtree
	}
	var a archiveWriter
	if o.Archive == "zip" {
		a = &zipArchive{zw: zip.NewWriter(w), r: r}
	} else {
		a = &tarArchive{tw: tar.NewWriter(w), r: r, links: map[[2]uint64]string{}}
	}
	if n != nil {
		if err := a.add(ctx, p, n); err != nil {
			return fmt.Errorf("dump %s: %w", p, err)
		}
	}
	err = r.repo.WalkTreeBudget(ctx, tree, p, repository.NewBudget(r.opts.Limits), func(np string, nn *repository.Node) error {
		if err := a.add(ctx, np, nn); err != nil {
			return fmt.Errorf("%s: %w", np, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dump %s: snapshot %s: %w", p, snap.ID().Short(), err)
	}
	if err := a.close(); err != nil {
		return fmt.Errorf("dump %s: %w", p, err)
	}
	return nil
}

// dumpContent writes the content of file node n to w.
func (r *Repository) dumpContent(ctx context.Context, n *repository.Node, w io.Writer) error {
	var buf []byte
	for _, id := range n.Content {
		data, err := r.repo.LoadBlob(ctx, repository.BlobHandle{Type: repository.DataBlob, ID: id}, buf)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		buf = data
	}
	return nil
}

type archiveWriter interface {
	add(ctx context.Context, p string, n *repository.Node) error
	close() error
}

// archiveName is p as an archive member: relative, directories ending
// in "/".
func archiveName(p string, n *repository.Node) string {
	name := strings.TrimPrefix(p, "/")
	if n.Type == repository.NodeDir {
		name += "/"
	}
	return name
}

type tarArchive struct {
	tw    *tar.Writer
	r     *Repository
	links map[[2]uint64]string // (device, inode) of hard-linked files: first name
}

func (a *tarArchive) add(ctx context.Context, p string, n *repository.Node) error {
	h := &tar.Header{
		Name: archiveName(p, n), Mode: int64(n.Mode & 0o7777), Uid: int(n.UID), Gid: int(n.GID),
		Uname: n.User, Gname: n.Group, ModTime: time.Unix(0, n.MTimeNs),
	}
	// PAX keeps nanoseconds, long names and extended attributes.
	h.Format = tar.FormatPAX
	for _, x := range n.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+string(x.Name)] = string(x.Value)
	}
	content := false
	switch n.Type {
	case repository.NodeDir:
		h.Typeflag = tar.TypeDir
	case repository.NodeFile:
		k := [2]uint64{n.Device, n.Inode}
		if first, ok := a.links[k]; ok && n.Links > 1 {
			h.Typeflag, h.Linkname = tar.TypeLink, first
			break
		}
		if n.Links > 1 {
			a.links[k] = h.Name
		}
		h.Typeflag, h.Size, content = tar.TypeReg, int64(n.Size), true
	case repository.NodeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(n.LinkTarget)
	case repository.NodeFIFO:
		h.Typeflag = tar.TypeFifo
	case repository.NodeCharDev, repository.NodeBlockDev:
		h.Typeflag = tar.TypeChar
		if n.Type == repository.NodeBlockDev {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(n.Rdev)), int64(unix.Minor(n.Rdev))
	default:
		return nil // sockets are not stored; nothing else is known
	}
	if err := a.tw.WriteHeader(h); err != nil {
		return err
	}
	if !content {
		return nil
	}
	// The header promised Size bytes: a snapshot whose chunks hold
	// another amount is damaged, and the archive would be too.
	cw := &countWriter{w: a.tw}
	if err := a.r.dumpContent(ctx, n, cw); err != nil {
		return err
	}
	if cw.n != h.Size {
		return fmt.Errorf("content is %d bytes, the snapshot says %d", cw.n, h.Size)
	}
	return nil
}

func (a *tarArchive) close() error { return a.tw.Close() }

type zipArchive struct {
	zw *zip.Writer
	r  *Repository
}

func (a *zipArchive) add(ctx context.Context, p string, n *repository.Node) error {
	h := &zip.FileHeader{Name: archiveName(p, n), Modified: time.Unix(0, n.MTimeNs), Method: zip.Deflate}
	mode := fs.FileMode(n.Mode & 0o777)
	if n.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if n.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if n.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	switch n.Type {
	case repository.NodeDir:
		mode |= fs.ModeDir
		h.Method = zip.Store
	case repository.NodeFile:
	case repository.NodeSymlink:
		mode |= fs.ModeSymlink
	case repository.NodeFIFO:
		mode |= fs.ModeNamedPipe
	case repository.NodeCharDev:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case repository.NodeBlockDev:
		mode |= fs.ModeDevice
	default:
		return nil
	}
	h.SetMode(mode)
	fw, err := a.zw.CreateHeader(h)
	if err != nil {
		return err
	}
	switch n.Type {
	case repository.NodeFile:
		return a.r.dumpContent(ctx, n, fw)
	case repository.NodeSymlink:
		// Info-ZIP stores a symlink's target as its content.
		_, err = fw.Write([]byte(n.LinkTarget))
	}
	return err
}

func (a *zipArchive) close() error { return a.zw.Close() }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
