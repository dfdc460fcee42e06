package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/pkg/backup/archiver"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/chunker"
	"github.com/hostd/hostd/pkg/backup/crypto"
	"github.com/hostd/hostd/pkg/backup/pattern"
	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

// Errors callers test with errors.Is.
var (
	ErrNotRepository = repository.ErrNotRepository
	ErrWrongPassword = repository.ErrWrongPassword
	ErrLocked        = repository.ErrLocked
	// ErrTargetNotEmpty: a restore into a directory with entries, without
	// RestoreOptions.Overwrite.
	ErrTargetNotEmpty = restorer.ErrTargetNotEmpty
)

// MaxCompression is the highest zstd level.
const MaxCompression = 22

// InitOptions configure a new repository.
type InitOptions struct {
	// Compression is the zstd level, 1..MaxCompression (0: the default,
	// 3); -1 stores uncompressed.
	Compression int
	// PackSize is the target pack size in bytes (default 4 MiB; 16 MiB,
	// backend.RemotePackSize, on S3, REST and rclone repositories).
	PackSize int
	// Chunker overrides the chunk sizes (default 256 KiB / 512 KiB / 4 MiB).
	Chunker *chunker.Params
	// KDF overrides the argon2id parameters (default 2 passes, 32 MiB, 2 lanes).
	KDF *crypto.KDFParams
	// Backend configures the SFTP connection.
	Backend backend.Options
}

// OpenOptions configure opening a repository.
type OpenOptions struct {
	Backend backend.Options
	Logger  *slog.Logger     // default: discard
	Now     func() time.Time // default: time.Now
	// CacheDir holds the file cache; default $XDG_CACHE_HOME/hostd/backup.
	CacheDir string
	// NoCache disables the file cache: every file is read.
	NoCache bool
	// Limits bound the walks of a snapshot's trees by restore, ls,
	// diff, check and prune (zero fields: repository.DefaultMaxWalkNodes
	// nodes, repository.DefaultMaxTreeDepth levels).
	Limits repository.Limits
	// KeyHint names the key file to try first (repository.Options.KeyHint):
	// the one that opened the repository last time (KeyInUse).
	KeyHint string
	// PrefetchSnapshots reads the snapshot files while the key is derived
	// (repository.Options.PrefetchSnapshots): for a restore, dump, ls or
	// snapshot listing, which read them next.
	PrefetchSnapshots bool
}

// Repository is an open repository.
type Repository struct {
	repo *repository.Repository
	opts OpenOptions
	log  *slog.Logger
	now  func() time.Time
}

// Init creates a repository at repoURL protected by password.
func Init(ctx context.Context, repoURL string, password []byte, opts InitOptions) error {
	r, err := create(ctx, repoURL, password, opts)
	if err != nil {
		return err
	}
	return r.Close()
}

// create is Init, returning the created repository open.
func create(ctx context.Context, repoURL string, password []byte, opts InitOptions) (*repository.Repository, error) {
	be, err := backend.Open(ctx, repoURL, opts.Backend)
	if err != nil {
		return nil, err
	}
	cfg := repository.DefaultConfig()
	switch {
	case opts.Compression < -1 || opts.Compression > MaxCompression:
		be.Close()
		return nil, fmt.Errorf("init repository: compression level %d: want 1..%d, or -1 for none", opts.Compression, MaxCompression)
	case opts.Compression < 0:
		cfg.Compression = 0
	case opts.Compression > 0:
		cfg.Compression = opts.Compression
	}
	if opts.PackSize > 0 {
		cfg.PackSize = opts.PackSize
	} else if ph, ok := be.(backend.PackSizeHinter); ok {
		cfg.PackSize = ph.PackSizeHint() // object storage: fewer, larger packs
	}
	if opts.Chunker != nil {
		cfg.Chunker = *opts.Chunker
	}
	kdf := crypto.DefaultKDFParams()
	if opts.KDF != nil {
		kdf = *opts.KDF
	}
	r, err := repository.Create(ctx, be, password, cfg, kdf, repository.Options{})
	if err != nil {
		be.Close()
		return nil, err
	}
	return r, nil
}

// Open unlocks the repository at repoURL. Errors wrap ErrNotRepository or
// ErrWrongPassword when that is the cause.
func Open(ctx context.Context, repoURL string, password []byte, opts OpenOptions) (*Repository, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	be, err := backend.Open(ctx, repoURL, opts.Backend)
	if err != nil {
		return nil, err
	}
	r, err := repository.Open(ctx, be, password, repository.Options{Logger: opts.Logger, Now: opts.Now, KeyHint: opts.KeyHint,
		PrefetchSnapshots: opts.PrefetchSnapshots})
	if err != nil {
		be.Close()
		return nil, err
	}
	return &Repository{repo: r, opts: opts, log: opts.Logger, now: opts.Now}, nil
}

// Close releases the repository.
func (r *Repository) Close() error { return r.repo.Close() }

// Internal returns the format-level repository (for tools and tests).
func (r *Repository) Internal() *repository.Repository { return r.repo }

// BackupOptions configure Backup.
type BackupOptions struct {
	Paths            []string
	Excludes         []string // borg patterns, default style sh:
	ExcludeFiles     []string // borg pattern files (+ include, - exclude, ! no-recurse)
	ExcludeCaches    bool
	ExcludeIfPresent []string
	OneFileSystem    bool
	Tags             []string
	Hostname         string // default: os.Hostname
	Progress         func(Progress)
	// ProgressInterval between Progress calls; default 1s.
	ProgressInterval time.Duration
	// Warn receives each path that could not be saved (also counted in
	// BackupSummary.Errors); default: logged.
	Warn func(path string, err error)
	// FilesFrom names files listing paths to back up, one a line (empty
	// lines and lines starting with # skipped, shell globs expanded);
	// FilesFromRaw names files of NUL-separated paths taken as they are.
	// "-" is stdin.
	FilesFrom, FilesFromRaw []string
	// ExcludeListFiles name files of exclude patterns, one a line (as
	// --exclude; empty lines and # comments skipped).
	ExcludeListFiles []string
	// ExcludeLargerThan skips files larger than this (bytes; 0: none).
	ExcludeLargerThan int64
	// Time is the snapshot's time (zero: now).
	Time time.Time
	// DryRun decides what would be read without reading a file or
	// writing to the repository (no lock is taken); DryRunFile receives
	// each file that would be read: its size, the bytes that would be
	// read (a sparse file's data only) and "new" or "changed".
	DryRun     bool
	DryRunFile func(path string, size, read int64, status string)
	// Stdin reads what would be listed in paths from this file.
	Stdin io.Reader
}

// Progress is a live view of a backup or restore.
type Progress struct {
	FilesDone  int64         `json:"files_done"`
	FilesTotal int64         `json:"files_total"`
	BytesDone  int64         `json:"bytes_done"`
	BytesTotal int64         `json:"bytes_total"`
	BytesAdded int64         `json:"bytes_added,omitempty"`
	Errors     int64         `json:"errors"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	ScanDone   bool          `json:"scan_done"`
	Current    string        `json:"current,omitempty"`
}

// BackupSummary is the outcome of Backup. Errors > 0 means a partial
// backup: the snapshot exists but lacks the files named in warnings.
type BackupSummary struct {
	SnapshotID      string        `json:"snapshot_id,omitempty"`
	FilesNew        int           `json:"files_new"`
	FilesChanged    int           `json:"files_changed"`
	FilesUnmodified int           `json:"files_unmodified"`
	Dirs            int           `json:"dirs"`
	BytesTotal      int64         `json:"bytes_total"`
	BytesRead       int64         `json:"bytes_read"`
	BytesAdded      int64         `json:"bytes_added"`
	BytesStored     int64         `json:"bytes_stored"`
	Errors          int           `json:"errors"`
	Warnings        []string      `json:"warnings,omitempty"`
	Duration        time.Duration `json:"duration_ns"`
}

// Backup saves opts.Paths as a new snapshot. If ctx is cancelled, the
// data packed so far is kept (with its index) for the next run, no
// snapshot is written, and the summary is returned with ctx's error.
func (r *Repository) Backup(ctx context.Context, opts BackupOptions) (*BackupSummary, error) {
	m := pattern.NewMatcher()
	excludes := slices.Clone(opts.Excludes)
	for _, f := range opts.ExcludeListFiles {
		lines, err := readListFile(f, opts.Stdin, false)
		if err != nil {
			return nil, fmt.Errorf("backup: exclude file: %w", err)
		}
		excludes = append(excludes, lines...)
	}
	rules, err := pattern.ParseExcludes(excludes)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	m.Add(rules...)
	for _, f := range opts.FilesFrom {
		lines, err := readListFile(f, opts.Stdin, false)
		if err != nil {
			return nil, fmt.Errorf("backup: files from: %w", err)
		}
		opts.Paths = append(slices.Clip(opts.Paths), expandGlobs(lines)...)
	}
	for _, f := range opts.FilesFromRaw {
		lines, err := readListFile(f, opts.Stdin, true)
		if err != nil {
			return nil, fmt.Errorf("backup: files from: %w", err)
		}
		opts.Paths = append(slices.Clip(opts.Paths), lines...)
	}
	for _, f := range opts.ExcludeFiles {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("backup: pattern file: %w", err)
		}
		pf, err := pattern.LoadFile(fh, f)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		m.Add(pf.Rules...)
		// R lines name paths to back up, as in borg.
		opts.Paths = append(slices.Clip(opts.Paths), pf.Roots...)
	}
	if len(opts.Paths) == 0 {
		return nil, errors.New("backup: no paths")
	}
	if opts.Warn == nil {
		opts.Warn = func(p string, err error) { r.log.Warn("cannot back up", "path", p, "err", err) }
	}
	// A path that does not exist is skipped with a warning, as restic
	// does, and makes the backup partial; if none exists, nothing is
	// backed up.
	var missing int
	paths := make([]string, 0, len(opts.Paths))
	for _, p := range opts.Paths {
		if _, err := os.Lstat(p); err != nil {
			if len(opts.Paths) == 1 || !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("backup: source %w", err)
			}
			opts.Warn(p, err)
			missing++
			continue
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("backup: none of the sources %q exists", opts.Paths)
	}
	opts.Paths = paths
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if !opts.DryRun {
		lock, err := r.repo.Lock(ctx, false)
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		defer lock.Unlock()
		// Packs of an interrupted run that never got indexed are reused.
		if n, err := r.repo.AdoptPacks(ctx); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		} else if n > 0 {
			r.log.Info("reusing packs of an interrupted backup", "packs", n)
		}
	}
	var cache *archiver.FileCache
	if !r.opts.NoCache {
		cache = archiver.LoadFileCache(r.cachePath())
	}
	aopts := archiver.Options{
		Paths: opts.Paths, Matcher: m, ExcludeCaches: opts.ExcludeCaches,
		ExcludeIfPresent: opts.ExcludeIfPresent, OneFileSystem: opts.OneFileSystem,
		Hostname: opts.Hostname, Tags: opts.Tags, Cache: cache, Now: r.now,
		ProgressInterval: opts.ProgressInterval, Warn: opts.Warn,
		ExcludeLargerThan: opts.ExcludeLargerThan, Time: opts.Time, DryRun: opts.DryRun, DryRunFile: opts.DryRunFile,
	}
	if opts.Progress != nil {
		aopts.Progress = func(p archiver.Progress) {
			opts.Progress(Progress{FilesDone: p.FilesDone, FilesTotal: p.FilesTotal, BytesDone: p.BytesDone,
				BytesTotal: p.BytesTotal, BytesAdded: p.BytesAdded, Errors: p.Errors, Elapsed: p.Elapsed,
				ScanDone: p.ScanDone, Current: p.Current})
		}
	}
	res, err := archiver.Run(ctx, r.repo, aopts)
	if res == nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	s := res.Summary
	sum := &BackupSummary{
		FilesNew: s.FilesNew, FilesChanged: s.FilesChanged, FilesUnmodified: s.FilesUnchanged,
		Dirs: s.Dirs, BytesTotal: s.BytesTotal, BytesRead: s.BytesRead, BytesAdded: s.BytesAdded,
		BytesStored: s.BytesStored, Errors: s.Errors + missing, Warnings: res.Warnings, Duration: s.End.Sub(s.Start),
	}
	if res.Snapshot != nil {
		sum.SnapshotID = res.Snapshot.ID().String()
	}
	if err != nil {
		return sum, fmt.Errorf("backup: %w", err)
	}
	return sum, nil
}

func (r *Repository) cachePath() string {
	dir := r.opts.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "hostd", "backup")
	}
	return filepath.Join(dir, r.repo.Config().ID.String(), "files")
}

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	ID       string                      `json:"id"`
	ShortID  string                      `json:"short_id"`
	Time     time.Time                   `json:"time"`
	Hostname string                      `json:"hostname"`
	Username string                      `json:"username,omitempty"`
	Paths    []string                    `json:"paths"`
	Tags     []string                    `json:"tags,omitempty"`
	Tree     string                      `json:"tree"`
	Summary  *repository.SnapshotSummary `json:"summary,omitempty"`
	// Original is the snapshot this one replaced (tag, rewrite).
	Original string `json:"original,omitempty"`
}

func snapshotInfo(s *repository.Snapshot) SnapshotInfo {
	si := SnapshotInfo{ID: s.ID().String(), ShortID: s.ID().Short(), Time: s.Time, Hostname: s.Hostname,
		Username: s.Username, Paths: s.Paths, Tags: s.Tags, Tree: s.Tree.String(), Summary: s.Summary}
	if s.Original != nil {
		si.Original = s.Original.String()
	}
	return si
}

// Snapshots lists snapshots oldest first. Unreadable snapshot files are
// logged and left out (check reports them).
func (r *Repository) Snapshots(ctx context.Context) ([]SnapshotInfo, error) {
	snaps, bad, err := r.repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	for id, err := range bad {
		r.log.Warn("snapshot unreadable", "snapshot", id.Short(), "err", err)
	}
	out := make([]SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, snapshotInfo(s))
	}
	return out, nil
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	Target           string
	Include          []string
	Overwrite        bool
	Progress         func(Progress)
	ProgressInterval time.Duration
	Warn             func(path string, err error)
	// NoLock skips the shared lock, for a repository that cannot be
	// written (read-only media, a full disk).
	NoLock bool
	// Exclude leaves out snapshot paths matching these patterns (borg
	// styles, as create's --exclude).
	Exclude []string
	// Verify reads every restored file back and checks it against the
	// snapshot's content IDs; a file that differs is an error.
	Verify bool
}

// RestoreSummary is the outcome of Restore.
type RestoreSummary struct {
	SnapshotID string        `json:"snapshot_id"`
	Files      int64         `json:"files"`
	Dirs       int64         `json:"dirs"`
	HardLinks  int64         `json:"hardlinks"`
	Special    int64         `json:"special"`
	Bytes      int64         `json:"bytes"`
	Errors     int64         `json:"errors"`
	Duration   time.Duration `json:"duration_ns"`
	// Verified counts files read back and found identical (Verify).
	Verified int64 `json:"verified,omitempty"`
}

// Restore restores snapshot ("latest" or an ID prefix) into opts.Target,
// which must be empty unless opts.Overwrite.
func (r *Repository) Restore(ctx context.Context, snapshot string, opts RestoreOptions) (*RestoreSummary, error) {
	lock, err := r.readLock(ctx, opts.NoLock)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer lock.Unlock()
	// The index was read by Open, before the lock: once the lock is
	// confirmed, it is brought to what the storage holds under it (one
	// listing, while the snapshot is resolved).
	var snap *repository.Snapshot
	g, gctx := errgroup.WithContext(ctx)
	if lock != nil {
		g.Go(func() error { return r.repo.RefreshIndex(gctx) })
	}
	g.Go(func() error {
		var err error
		snap, err = r.repo.FindSnapshot(gctx, snapshot)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ropts := restorerOptions(opts, r)
	sum, err := runRestore(ctx, r.repo, snap, ropts)
	if err != nil {
		return nil, err
	}
	return &RestoreSummary{SnapshotID: snap.ID().String(), Files: sum.Files, Dirs: sum.Dirs, HardLinks: sum.Links,
		Special: sum.Special, Bytes: sum.Bytes, Errors: sum.Errors, Duration: sum.Duration, Verified: sum.Verified}, nil
}

// RepoStats describes the repository's size.
type RepoStats struct {
	Location    string `json:"location"`
	ID          string `json:"id"`
	Snapshots   int    `json:"snapshots"`
	Packs       int    `json:"packs"`
	PackBytes   int64  `json:"pack_bytes"`
	IndexFiles  int    `json:"index_files"`
	Blobs       int    `json:"blobs"`
	SizeOnDisk  int64  `json:"size_on_disk"`
	Compression int    `json:"compression"`
}

// Stats returns the repository size and counts.
func (r *Repository) Stats(ctx context.Context) (RepoStats, error) {
	st := RepoStats{Location: r.repo.Backend().Location(), ID: r.repo.Config().ID.String(),
		Blobs: r.repo.Index().Len(), Compression: r.repo.Config().Compression}
	for _, t := range backend.Types() {
		files, err := r.repo.List(ctx, t)
		if err != nil {
			return st, err
		}
		for _, size := range files {
			st.SizeOnDisk += size
			switch t {
			case backend.Pack:
				st.Packs++
				st.PackBytes += size
			case backend.Index:
				st.IndexFiles++
			case backend.Snapshot:
				st.Snapshots++
			}
		}
	}
	if size, err := r.repo.Backend().Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
		st.SizeOnDisk += size
	}
	return st, nil
}

func keyHandle(name string) backend.Handle { return backend.Handle{Type: backend.Key, Name: name} }
