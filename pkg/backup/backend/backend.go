package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/secrets"
)

// FileType is a kind of repository file, and the directory holding it.
type FileType string

// Repository file types.
const (
	Config   FileType = "config"
	Key      FileType = "keys"
	Pack     FileType = "data"
	Index    FileType = "index"
	Snapshot FileType = "snapshots"
	Lock     FileType = "locks"
)

// Types returns the directory file types (all but Config).
func Types() []FileType { return []FileType{Key, Pack, Index, Snapshot, Lock} }

// Handle names one repository file.
type Handle struct {
	Type FileType
	Name string // hex ID; empty for Config
}

func (h Handle) String() string {
	if h.Type == Config {
		return "config"
	}
	return string(h.Type) + "/" + h.Name
}

// relPath is the slash path of h inside the repository.
func (h Handle) relPath() string {
	switch {
	case h.Type == Config:
		return "config"
	case h.Type == Pack && len(h.Name) >= 2:
		return path.Join("data", h.Name[:2], h.Name)
	default:
		return path.Join(string(h.Type), h.Name)
	}
}

// ErrNotExist is wrapped by errors for files that do not exist.
var ErrNotExist = fs.ErrNotExist

// Backend stores repository files.
type Backend interface {
	// Location names the backend for messages (never includes secrets).
	Location() string
	// Create lays out an empty repository; it fails if a config exists.
	Create(ctx context.Context) error
	// Save writes data under h atomically and durably.
	Save(ctx context.Context, h Handle, data []byte) error
	// Load reads length bytes at offset (length 0: to the end, refused
	// for a file over FileLimit of its type).
	Load(ctx context.Context, h Handle, offset int64, length int) ([]byte, error)
	// Stat returns the size of h.
	Stat(ctx context.Context, h Handle) (int64, error)
	// List calls fn for every file of type t.
	List(ctx context.Context, t FileType, fn func(name string, size int64) error) error
	// Remove deletes h.
	Remove(ctx context.Context, h Handle) error
	// ListTemp calls fn for every temporary file in the repository:
	// files a write left behind when it was interrupted between writing
	// and renaming, or of a write under way.
	ListTemp(ctx context.Context, fn func(TempFile) error) error
	// RemoveTemp deletes the temporary file rel named by ListTemp.
	RemoveTemp(ctx context.Context, rel string) error
	Close() error
}

// BufferLoader is implemented by backends that can read into a buffer
// the caller reuses (restore reads thousands of pack spans).
type BufferLoader interface {
	// LoadInto reads len(buf) bytes of h at offset into buf.
	LoadInto(ctx context.Context, h Handle, offset int64, buf []byte) error
}

// RangeReader is implemented by backends that hand a range of a file
// over as a stream, so a reader can use its first bytes while the rest
// are still on the way (restore reads the packs of remote repositories
// so). OpenRange makes one request for length bytes of h at offset,
// retried like any other until the server answers with that range; the
// reader then yields exactly length bytes and io.EOF, or an error
// (io.ErrUnexpectedEOF for a body that ends early). A read that waits
// longer than the backend's operation deadline for the server fails
// with ErrTimeout; the caller may open the rest of the range again.
type RangeReader interface {
	OpenRange(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error)
}

// Stager is implemented by backends that save a file in two steps:
// Stage writes the data under a temporary name (the caller may reuse the
// buffer once it returns), and Commit on the result makes the file
// durable and gives it its name, as Save does in one step, with a wait
// for the disk that leaves the caller's thread to other goroutines (Save
// is for callers with nothing else to do). Until Commit returns, a crash
// leaves at most a temporary file, which readers ignore.
type Stager interface {
	Stage(ctx context.Context, h Handle, data []byte) (Staged, error)
	// Idle says no file will be staged for a while: the backend may
	// release what committing them used.
	Idle()
}

// Staged is a file written by Stage and not yet committed.
type Staged interface {
	Commit() error
}

// LoadInto reads length bytes of h at offset, into buf when it is large
// enough and be is a BufferLoader, else into a new slice.
func LoadInto(ctx context.Context, be Backend, h Handle, offset int64, length int, buf []byte) ([]byte, error) {
	bl, ok := be.(BufferLoader)
	if !ok || length <= 0 {
		return be.Load(ctx, h, offset, length)
	}
	if cap(buf) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if err := bl.LoadInto(ctx, h, offset, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// PackSizeHinter is implemented by backends that suit packs larger than
// the repository's default: on object storage every pack is a request
// (and a charge), and large objects stream as fast as small ones. Init
// uses the hint when no pack size is given.
type PackSizeHinter interface {
	PackSizeHint() int
}

// RemotePackSize is the pack size S3, REST and rclone repositories are
// made with by default (restic's default too).
const RemotePackSize = 16 << 20

// WholeLoader is implemented by backends that read a whole file in one
// request (a round trip saved per config, key, index, snapshot and lock
// file on object storage). LoadWhole refuses a file the server says is
// larger than limit before reading it, and never reads more than limit
// bytes whatever the server says.
type WholeLoader interface {
	LoadWhole(ctx context.Context, h Handle, limit int64) ([]byte, error)
}

// readWhole reads a whole file body of announced size (-1: unknown)
// into memory, at most limit bytes: a body longer than announced, or
// than limit, is refused.
func readWhole(h Handle, body io.Reader, size, limit int64) ([]byte, error) {
	if size >= 0 {
		if err := checkSize(h, size, limit); err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		var one [1]byte
		if n, _ := body.Read(one[:]); n > 0 {
			return nil, fmt.Errorf("load %s: server sent more than the %d bytes it announced", h, size)
		}
		return buf, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("load %s: %w: more than %d bytes", h, ErrTooLarge, limit)
	}
	return b, nil
}

// ErrTooLarge is wrapped by errors for files larger than the caller (or
// FileLimit) allows: the storage is not trusted to keep files small.
var ErrTooLarge = safefile.ErrTooLarge

// Caps on whole repository files, by type. Whoever holds the storage can
// replace any file with a huge one; a read of a whole file (Load with
// length 0, LoadFile) never allocates more than its type's cap.
const (
	// ConfigLimit: the config is a few hundred bytes.
	ConfigLimit = 1 << 20
	// KeyLimit: a key file is under 1 KiB.
	KeyLimit = safefile.KeyFileLimit
	// LockLimit: a lock file is under 1 KiB.
	LockLimit = 64 << 10
	// SnapshotLimit: a snapshot lists its paths, tags and summary.
	SnapshotLimit = 16 << 20
	// IndexLimit: an index file decompresses to at most 256 MiB (the
	// decoder's cap), and its compressed form is smaller.
	IndexLimit = 256<<20 + 1<<20
	// PackLimit: a pack holds at most the largest pack size a config
	// allows (1 GiB) or one segment (at most 256 MiB of plaintext),
	// plus a header of at most 16 MiB.
	PackLimit = 1<<30 + 1<<28 + 1<<24 + 1<<20
)

// FileLimit returns the cap on a whole file of type t.
func FileLimit(t FileType) int64 {
	switch t {
	case Config:
		return ConfigLimit
	case Key:
		return KeyLimit
	case Lock:
		return LockLimit
	case Snapshot:
		return SnapshotLimit
	case Index:
		return IndexLimit
	}
	return PackLimit
}

// LoadFile reads the whole file h, refusing one larger than limit bytes
// (at most FileLimit(h.Type)) before reading it. The read asks for the
// size the storage reported, so a file that grows meanwhile costs no
// more memory.
func LoadFile(ctx context.Context, be Backend, h Handle, limit int64) ([]byte, error) {
	limit = min(limit, FileLimit(h.Type))
	if wl, ok := be.(WholeLoader); ok {
		return wl.LoadWhole(ctx, h, limit)
	}
	size, err := be.Stat(ctx, h)
	if err != nil {
		return nil, err
	}
	if err := checkSize(h, size, limit); err != nil {
		return nil, err
	}
	if size == 0 {
		return []byte{}, nil
	}
	return be.Load(ctx, h, 0, int(size))
}

// checkSize refuses a file of size bytes over limit.
func checkSize(h Handle, size, limit int64) error {
	if size > limit {
		return fmt.Errorf("load %s: %w: %d bytes, at most %d", h, ErrTooLarge, size, limit)
	}
	if size < 0 {
		return fmt.Errorf("load %s: negative size %d", h, size)
	}
	return nil
}

// wholeLength returns how many bytes a Load of h from offset with length
// 0 (to the end) reads from a file of size bytes, within FileLimit.
func wholeLength(h Handle, offset, size int64) (int, error) {
	if err := checkSize(h, size, FileLimit(h.Type)); err != nil {
		return 0, err
	}
	if offset < 0 || offset > size {
		return 0, fmt.Errorf("load %s: offset %d beyond end %d", h, offset, size)
	}
	return int(size - offset), nil
}

// Open returns the backend for a repository URL: a plain path or file://
// URL for a local directory, sftp://user@host[:port]/path,
// s3:http[s]://HOST/BUCKET/PREFIX, rest:http[s]://HOST/PATH or
// rclone:REMOTE:PATH.
func Open(ctx context.Context, repoURL string, opts Options) (Backend, error) {
	switch {
	case strings.HasPrefix(repoURL, "sftp://"):
		u, err := url.Parse(repoURL)
		if err != nil {
			return nil, fmt.Errorf("parse repository url: %w", err)
		}
		return OpenSFTP(ctx, u, opts.SFTP)
	case strings.HasPrefix(repoURL, "file://"):
		return NewLocal(strings.TrimPrefix(repoURL, "file://")), nil
	case strings.HasPrefix(repoURL, "s3:"):
		return OpenS3(ctx, repoURL, opts.S3, opts.HTTP, opts.Secrets)
	case strings.HasPrefix(repoURL, "rest:"):
		return OpenREST(ctx, repoURL, opts.REST, opts.HTTP, opts.Secrets)
	case strings.HasPrefix(repoURL, "rclone:"):
		return OpenRclone(ctx, repoURL, opts.Rclone, opts.HTTP, opts.Secrets)
	case strings.Contains(repoURL, "://"):
		return nil, fmt.Errorf("repository url %q: unsupported scheme (want a path, file://, sftp://, s3:, rest: or rclone:)", repoURL)
	case repoURL == "":
		return nil, errors.New("repository location is empty")
	default:
		return NewLocal(repoURL), nil
	}
}

// Remote reports whether repoURL names a repository on another machine
// (sftp, s3, rest, rclone): jobs using one wait for the network.
func Remote(repoURL string) bool {
	for _, p := range []string{"sftp://", "s3:", "rest:", "rclone:"} {
		if strings.HasPrefix(repoURL, p) {
			return true
		}
	}
	return false
}

// CheckURL checks the syntax of a repository URL without connecting or
// resolving anything (for config validation): the forms Open takes,
// with no credentials in the URL.
func CheckURL(repoURL string) error {
	var err error
	switch {
	case repoURL == "":
		err = errors.New("repository location is empty")
	case strings.HasPrefix(repoURL, "sftp://"):
		var u *url.URL
		if u, err = url.Parse(repoURL); err != nil {
			err = fmt.Errorf("parse repository url: %w", err)
		} else if u.Host == "" || u.Path == "" {
			err = fmt.Errorf("repository url %s: want sftp://user@host[:port]/path", redactURL(u))
		} else if _, pw := u.User.Password(); pw {
			err = fmt.Errorf("repository url %s: must not hold a password (SFTP authenticates with keys)", redactURL(u))
		}
	case strings.HasPrefix(repoURL, "s3:"):
		_, _, _, err = ParseS3(repoURL)
	case strings.HasPrefix(repoURL, "rest:"):
		_, err = ParseREST(repoURL)
	case strings.HasPrefix(repoURL, "rclone:"):
		_, err = ParseRclone(repoURL)
	case strings.HasPrefix(repoURL, "file://"):
	case strings.Contains(repoURL, "://"):
		err = fmt.Errorf("repository url %q: unsupported scheme (want a path, file://, sftp://, s3:, rest: or rclone:)", repoURL)
	}
	return err
}

// Options configures backends.
type Options struct {
	SFTP   SFTPOptions
	S3     S3Options
	REST   RESTOptions
	Rclone RcloneOptions
	// HTTP holds the deadlines, retries and rate limits of the S3, REST
	// and rclone backends.
	HTTP HTTPOptions
	// Secrets resolves the secret references of S3Options, RESTOptions
	// and RcloneOptions; nil: a resolver of the process environment.
	Secrets *secrets.Resolver
}

// isTemp reports names of temporary files a crashed writer left behind.
func isTemp(name string) bool { return strings.HasPrefix(name, ".tmp-") }

// TempFile is a temporary file in the repository.
type TempFile struct {
	Path    string // slash path inside the repository
	Size    int64
	ModTime time.Time
}

// Locked reports whether only a holder of a repository lock writes files
// in f's directory (packs, index files, snapshots), so that no write
// there is under way while an exclusive lock is held. Keys, locks and
// the config are written without one.
func (f TempFile) Locked() bool {
	switch strings.SplitN(f.Path, "/", 2)[0] {
	case string(Pack), string(Index), string(Snapshot):
		return true
	}
	return false
}

// ErrNotEmpty is wrapped by Create's error for a directory that holds
// files of something other than a repository.
var ErrNotEmpty = errors.New("directory is not empty and not a repository")

// checkForeign fails on the first name in a repository's root directory
// that is not part of the layout (nor a temporary file): Create refuses
// to mix a repository into a directory in use. The layout an interrupted
// init left is accepted.
func checkForeign(loc string, names []string) error {
	for _, n := range names {
		if isTemp(n) || slices.Contains(Types(), FileType(n)) {
			continue
		}
		return fmt.Errorf("create repository %s: %w (it holds %q): give a new or empty directory", loc, ErrNotEmpty, n)
	}
	return nil
}

// tempDirs are the directories, relative to the root, that hold
// temporary files: the root itself (config) and every file type's tree.
func tempDirs() []string {
	dirs := []string{"."}
	for _, t := range Types() {
		dirs = append(dirs, string(t))
	}
	return dirs
}

// checkTemp accepts only slash paths inside the repository that name a
// temporary file, so RemoveTemp never deletes anything else.
func checkTemp(rel string) error {
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") || !isTemp(path.Base(rel)) {
		return fmt.Errorf("remove temporary file %q: not a temporary file of the repository", rel)
	}
	return nil
}
