package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// fileWorker reads queued files and cuts them into chunks.
func (a *archiver) fileWorker(ctx context.Context) error {
	var bufs workerBufs
	for job := range a.filesCh {
		if ctx.Err() != nil {
			job.res <- ctx.Err()
			continue
		}
		a.current.Store(job.path)
		known := a.opts.Cache.Known(job.path)
		err := a.saveFile(ctx, job, &bufs)
		if err != nil {
			if ctx.Err() != nil {
				job.res <- ctx.Err()
				continue
			}
			var fatal *fatalError
			if errors.As(err, &fatal) {
				job.res <- err
				return fatal.err
			}
			a.warn(job.path, err)
			job.res <- err
			continue
		}
		a.mu.Lock()
		if known {
			a.summary.FilesChanged++
		} else {
			a.summary.FilesNew++
		}
		a.mu.Unlock()
		a.filesDone.Add(1)
		job.res <- nil
	}
	return nil
}

// fatalError marks repository failures (as opposed to unreadable source
// files): they end the run.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// workerBufs are a file worker's read buffers, kept for the whole run.
type workerBufs struct {
	small []byte // whole-file reads of files up to one chunk
	large []byte // chunking reads of larger files
	xattr []byte // lists of extended attribute names
}

func (a *archiver) saveFile(ctx context.Context, job *fileJob, bufs *workerBufs) error {
	// A raw descriptor, not an *os.File: regular files gain nothing from
	// the runtime poller, and skipping it saves several syscalls per file.
	// O_NONBLOCK changes nothing for a regular file, and keeps the open of
	// a FIFO that took the file's place from waiting for a writer.
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Open(job.path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(job.path, flags, 0)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: job.path, Err: err}
	}
	defer unix.Close(fd)
	f := fdReader(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("no longer a regular file")
	}
	// Metadata from the open file: what was read belongs to this inode.
	n := job.node
	fresh := nodeFromStat(string(n.Name), &st, a.names)
	fresh.Xattrs = n.Xattrs
	if job.openXattrs {
		x, err := readXattrs(job.path, fd, &bufs.xattr)
		if err != nil {
			a.warn(job.path, fmt.Errorf("read extended attributes: %w", err))
		}
		fresh.Xattrs = x
	}
	*n = fresh
	if a.opts.DryRun {
		status := "new"
		if a.opts.Cache.Known(job.path) {
			status = "changed"
		}
		// A sparse file would be read by its data extents: about its
		// allocated blocks.
		toRead := st.Size
		if n.Sparse {
			toRead = min(st.Size, st.Blocks*512)
		}
		a.bytesDone.Add(st.Size)
		a.mu.Lock()
		// File workers run concurrently: the callback is called under
		// the lock, one file at a time.
		if a.opts.DryRunFile != nil {
			a.opts.DryRunFile(job.path, st.Size, toRead, status)
		}
		a.summary.BytesRead += toRead
		a.summary.BytesTotal += st.Size
		a.mu.Unlock()
		return nil
	}

	var futures []chan blobResult
	var read int64
	if minSize := a.repo.Chunker().Params().Min; n.Size <= uint64(minSize) {
		// A file that fits one chunk is read whole into the worker's
		// small buffer (the large chunking buffer stays untouched).
		if cap(bufs.small) < int(n.Size)+1 {
			bufs.small = make([]byte, max(int(n.Size)+1, 64<<10))
		}
		// Reading stops once the size fstat gave is in: one read(2) for
		// the usual file instead of a second one that returns EOF. A file
		// that grew fills the extra byte, and one that changed after the
		// read is caught by fileSaved's second fstat. A size of 0 still
		// reads: /proc and /sys files say 0 and have content.
		small := bufs.small[:n.Size+1]
		m, err := io.ReadAtLeast(f, small, max(int(n.Size), 1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			// An empty file has no content: it depends on no stored data.
			return a.fileSaved(job, fd, &st, 0, nil)
		}
		if m <= minSize {
			id, _, err := a.repo.SaveBlob(ctx, repository.DataBlob, small[:m])
			if err != nil {
				return &fatalError{err}
			}
			a.bytesDone.Add(int64(m))
			return a.fileSaved(job, fd, &st, int64(m), []repository.ID{id})
		}
		// Grew past one chunk while opening: chunk it from the start.
		if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	cut := func(chunk []byte) error {
		read += int64(len(chunk))
		a.bytesDone.Add(int64(len(chunk)))
		ch := make(chan blobResult, 1)
		single := len(futures) == 0 && int64(len(chunk)) == int64(n.Size)
		if !single && !a.inlineBlobs {
			select {
			case a.blobSlots <- struct{}{}:
				// A blob worker is free (or will be): hand it a copy and
				// go on reading.
				data := a.getBuf(len(chunk))
				copy(data, chunk)
				a.blobsCh <- &blobJob{data: data, res: ch} // never blocks: slots bound the queue
				futures = append(futures, ch)
				return nil
			default:
			}
		}
		// Saved here, straight from the read buffer: a single-chunk file
		// (no copy or hand-off), a grouped repository (it copies the
		// chunk into its open segment and compresses full segments in
		// the background), or every blob worker is busy.
		id, _, err := a.repo.SaveBlob(ctx, repository.DataBlob, chunk)
		if err != nil {
			return &fatalError{err}
		}
		ch <- blobResult{id: id}
		futures = append(futures, ch)
		return nil
	}
	// The read buffer fits the file, up to readBufMax: chunks are rarely
	// more than twice the average, and Split moves to a buffer of the
	// largest chunk size only for a chunk that does not fit.
	size := int(min(n.Size+1, uint64(max(readBufMax, 2*a.repo.Chunker().Params().Avg))))
	if cap(bufs.large) < size {
		bufs.large = make([]byte, size)
	}
	var src io.Reader = f
	var sparse *sparseReader
	if n.Sparse {
		// Holes are given to the chunker as zeros without reading them.
		sparse = &sparseReader{fd: fd, size: st.Size}
		src = sparse
	}
	err = a.repo.Chunker().Split(io.LimitReader(src, 1<<62), bufs.large[:size], cut)
	content := make([]repository.ID, 0, len(futures))
	var ferr error
	for _, ch := range futures {
		r := <-ch
		if r.err != nil && ferr == nil {
			ferr = r.err
		}
		content = append(content, r.id)
	}
	if ferr != nil {
		return &fatalError{ferr}
	}
	if err != nil {
		var fe *fatalError
		if errors.As(err, &fe) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("read: %w", err)
	}
	diskRead := read
	if sparse != nil {
		diskRead = sparse.diskRead
	}
	return a.fileSavedSparse(job, fd, &st, read, diskRead, content)
}

// readBufMax is the read buffer of large files: four average chunks, so
// a chunk rarely outgrows it (Split then needs a buffer of the largest).
const readBufMax = 2 << 20

// fdReader reads a raw file descriptor.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := unix.Read(int(fd), p)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// fileSaved records a file's content and flags a file that changed while
// being read.
func (a *archiver) fileSaved(job *fileJob, fd int, st *unix.Stat_t, read int64, content []repository.ID) error {
	return a.fileSavedSparse(job, fd, st, read, read, content)
}

// fileSavedSparse is fileSaved for a file of read bytes of which only
// diskRead were read from the disk (the rest were holes).
func (a *archiver) fileSavedSparse(job *fileJob, fd int, st *unix.Stat_t, read, diskRead int64, content []repository.ID) error {
	n := job.node
	a.mu.Lock()
	a.summary.BytesRead += diskRead
	a.summary.BytesTotal += read
	a.mu.Unlock()
	var after unix.Stat_t
	changed := unix.Fstat(fd, &after) != nil || after.Mtim != st.Mtim || after.Size != st.Size || read != st.Size
	n.Size = uint64(read)
	n.Content = content
	if changed {
		// Saved as read, flagged, and kept out of the cache so the next
		// run reads it again.
		a.mu.Lock()
		a.warnings = append(a.warnings, job.path+": file changed while being read")
		a.mu.Unlock()
		return nil
	}
	a.opts.Cache.Store(job.path, n, content)
	return nil
}

func (a *archiver) getBuf(n int) []byte {
	if b, ok := a.bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n, max(n, a.repo.Chunker().Params().Avg*2))
}

func (a *archiver) putBuf(b []byte) {
	a.bufPool.Put(&b)
}

// blobWorker hashes, compresses, encrypts and packs chunks.
func (a *archiver) blobWorker(ctx context.Context) error {
	for job := range a.blobsCh {
		id, _, err := a.repo.SaveBlob(ctx, repository.DataBlob, job.data)
		a.putBuf(job.data)
		<-a.blobSlots
		job.res <- blobResult{id: id, err: err}
	}
	return nil
}

// treeFinisher saves directory trees in post-order, once their files are
// done; children always arrive before their parent.
func (a *archiver) treeFinisher(ctx context.Context) error {
	for t := range a.treeCh {
		drop := map[int]bool{}
		for _, pf := range t.files {
			select {
			case err := <-pf.job.res:
				if err != nil {
					drop[pf.idx] = true
					continue
				}
			case <-ctx.Done():
				return ctx.Err()
			}
			t.nodes[pf.idx] = *pf.job.node
		}
		for _, pd := range t.subdirs {
			id := pd.task.id
			t.nodes[pd.idx].Subtree = &id
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		tree := &repository.Tree{Nodes: make([]repository.Node, 0, len(t.nodes))}
		for i, n := range t.nodes {
			if !drop[i] {
				tree.Nodes = append(tree.Nodes, n)
			}
		}
		tree.Sort()
		if a.opts.DryRun {
			*t = dirTask{path: t.path}
			continue
		}
		id, err := a.repo.SaveTree(ctx, tree)
		if err != nil {
			return fmt.Errorf("save tree %s: %w", t.path, err)
		}
		// The parent needs only the ID: drop the entries, or every node
		// of the run would stay live until the root is saved.
		*t = dirTask{path: t.path, id: id}
	}
	return nil
}

// scan counts files and bytes for progress totals.
func (a *archiver) scan(ctx context.Context, paths []string) {
	defer a.scanDone.Store(true)
	buf := make([]byte, dirBufSize)
	var walk func(p string)
	walk = func(p string) {
		if ctx.Err() != nil {
			return
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return
		}
		if a.opts.Matcher.Match(p) > 1 && !a.opts.Matcher.HasIncludes() {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			a.filesTotal.Add(1)
			a.bytesTotal.Add(st.Size)
		case unix.S_IFDIR:
			names, _ := readDirNames(p, buf)
			for _, n := range names {
				walk(childPath(p, n))
			}
		}
	}
	for _, p := range paths {
		walk(p)
	}
}
