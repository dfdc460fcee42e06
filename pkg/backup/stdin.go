package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// BackupReader saves what r yields as one file, name (a path such as
// "db.sql" or "/dumps/db.sql", made absolute), in a new snapshot whose
// path is that name: a database dump piped in. The file gets mode 0644,
// the caller's owner and the snapshot's time; the directories above it
// mode 0755. opts' Tags, Hostname and Time apply; the other fields that
// select files do not.
func (r *Repository) BackupReader(ctx context.Context, name string, in io.Reader, opts BackupOptions) (*BackupSummary, error) {
	p := path.Clean("/" + name)
	if name == "" || p == "/" || strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("backup stdin: file name %q: want a file name such as db.sql", name)
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	start := r.now()
	when := start
	if !opts.Time.IsZero() {
		when = opts.Time
	}
	lock, err := r.repo.Lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("backup stdin: %w", err)
	}
	defer lock.Unlock()
	before := r.repo.Stats()
	var content []repository.ID
	var size int64
	cut := func(chunk []byte) error {
		id, _, err := r.repo.SaveBlob(ctx, repository.DataBlob, chunk)
		if err != nil {
			return &saveError{err}
		}
		content = append(content, id)
		size += int64(len(chunk))
		if opts.Progress != nil {
			opts.Progress(Progress{BytesDone: size, Elapsed: r.now().Sub(start), Current: p})
		}
		return nil
	}
	buf := make([]byte, 2*r.repo.Chunker().Params().Max)
	err = r.repo.Chunker().Split(in, buf, cut)
	if err != nil {
		// What was packed is kept for the next run, as Backup does.
		if ferr := r.repo.Flush(ctx); ferr != nil {
			err = errors.Join(err, ferr)
		}
		var se *saveError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("backup stdin: %w", se.err)
		}
		return nil, fmt.Errorf("backup stdin: read %s: %w", name, err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	user := currentUser()
	node := repository.Node{Name: repository.Bytes(path.Base(p)), Type: repository.NodeFile, Mode: 0o644,
		UID: uid, GID: gid, User: user, Size: uint64(size), MTimeNs: when.UnixNano(), CTimeNs: when.UnixNano(), Content: content}
	// The tree from the file up to the root.
	id, err := r.repo.SaveTree(ctx, &repository.Tree{Nodes: []repository.Node{node}})
	if err != nil {
		return nil, fmt.Errorf("backup stdin: %w", err)
	}
	dirs := 0
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		sub := id
		d := repository.Node{Name: repository.Bytes(path.Base(dir)), Type: repository.NodeDir, Mode: 0o755,
			UID: uid, GID: gid, User: user, MTimeNs: when.UnixNano(), Subtree: &sub}
		if id, err = r.repo.SaveTree(ctx, &repository.Tree{Nodes: []repository.Node{d}}); err != nil {
			return nil, fmt.Errorf("backup stdin: %w", err)
		}
		dirs++
	}
	if err := r.repo.Flush(ctx); err != nil {
		return nil, fmt.Errorf("backup stdin: flush: %w", err)
	}
	after := r.repo.Stats()
	end := r.now()
	sum := repository.SnapshotSummary{Start: start, End: end, FilesNew: 1, Dirs: dirs, BytesRead: size, BytesTotal: size,
		BytesAdded: after.BytesRaw - before.BytesRaw, BytesStored: after.BytesStored - before.BytesStored}
	snap := &repository.Snapshot{Time: when, Tree: id, Paths: []string{p}, Hostname: opts.Hostname, Username: user,
		Tags: opts.Tags, Summary: &sum}
	sid, err := r.repo.SaveSnapshot(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("backup stdin: %w", err)
	}
	return &BackupSummary{SnapshotID: sid.String(), FilesNew: 1, Dirs: dirs, BytesTotal: size, BytesRead: size,
		BytesAdded: sum.BytesAdded, BytesStored: sum.BytesStored, Duration: end.Sub(start)}, nil
}

// saveError marks a repository failure inside the chunker's callback, to
// tell it from a failure to read the input.
type saveError struct{ err error }

func (e *saveError) Error() string { return e.err.Error() }
func (e *saveError) Unwrap() error { return e.err }

// currentUser is the name of the process's user ("" when it has none).
func currentUser() string {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		return ""
	}
	return u.Username
}
