package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) createCmd() *cobra.Command {
	var o backup.BackupOptions
	var stdin bool
	var stdinName, when string
	var larger sizeFlag
	cmd := &cobra.Command{
		Use:     "create PATH...",
		Aliases: []string{"backup"},
		Short:   "Back up paths as a new snapshot",
		Long: `Back up paths as a new snapshot. Excludes use borg's pattern styles: sh: (default),
fm:, re:, pp:, pf:. --patterns-from reads borg pattern files (+ include, - exclude,
! exclude without descending, P style, R path to back up). Exit status 3 means some
files could not be read, or a path did not exist: the snapshot exists without them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if when != "" {
				t, err := parseSnapshotTime(when)
				if err != nil {
					return err
				}
				o.Time = t
			}
			if stdin {
				if len(args) > 0 || len(o.FilesFrom)+len(o.FilesFromRaw) > 0 {
					return errors.New("--stdin backs up stdin only: give no PATH and no --files-from")
				}
				if o.DryRun {
					return errors.New("--stdin cannot be combined with --dry-run")
				}
				return nil
			}
			if cmd.Flags().Changed("stdin-filename") {
				return errors.New("--stdin-filename needs --stdin")
			}
			if len(args) == 0 && len(o.ExcludeFiles)+len(o.FilesFrom)+len(o.FilesFromRaw) == 0 {
				return errors.New("no paths to back up: give PATH..., --files-from or R lines in a --patterns-from file")
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			o.Paths = args
			o.ExcludeLargerThan = int64(larger)
			o.Stdin = cmd.InOrStdin()
			if stdin {
				return f.createStdin(cmd, r, stdinName, o)
			}
			if o.DryRun {
				return f.createDryRun(cmd, r, o)
			}
			prog := newProgress(cmd, f.g.json, "backup")
			if prog.shown() {
				// Progress totals cost a second walk of the paths.
				o.Progress = prog.update
			}
			o.Warn = func(p string, err error) { prog.warn(p, err) }
			// A backup keeps its large buffers (segments, packs) outside
			// the Go heap; at most about 33 MiB is live in it on a first
			// backup of the Go toolchain tree (zstd encoders, read
			// buffers, the file cache, the trees in progress), so the
			// 48 MiB limit leaves the collector room to run only when the
			// heap doubled: 16 collections instead of 22 at GOGC=50, 4%
			// less CPU, the same peak RSS. A 40 MiB limit saved 4 MiB of
			// RSS for 7% more CPU; 56 MiB cost 8 MiB for nothing.
			limitHeap(48<<20, 100)
			sum, err := r.Backup(cmd.Context(), o)
			prog.finish()
			if err != nil {
				if sum != nil && errors.Is(err, context.Canceled) {
					fmt.Fprintf(cmd.ErrOrStderr(), "interrupted: %s added and kept for the next run, no snapshot written\n", service.FormatBytes(sum.BytesAdded))
				}
				return err
			}
			if f.g.json {
				// One JSON object per line: progress lines, then this.
				if err := printJSONLine(cmd.OutOrStdout(), map[string]any{"summary": sum}); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "snapshot %s saved\n", sum.SnapshotID[:8])
				fmt.Fprintf(w, "files:  %d new, %d changed, %d unmodified\n", sum.FilesNew, sum.FilesChanged, sum.FilesUnmodified)
				fmt.Fprintf(w, "data:   %s total, %s read, %s added (%s stored)\n", service.FormatBytes(sum.BytesTotal), service.FormatBytes(sum.BytesRead), service.FormatBytes(sum.BytesAdded), service.FormatBytes(sum.BytesStored))
				fmt.Fprintf(w, "time:   %s\n", sum.Duration.Round(time.Millisecond))
				for _, warn := range sum.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
				}
			}
			if sum.Errors > 0 {
				return &exitError{code: 3, err: fmt.Errorf("partial backup: %d paths could not be read (named above)", sum.Errors)}
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Excludes, "exclude", "e", nil, "exclude paths matching PATTERN (borg style, default sh:)")
	fl.StringArrayVar(&o.ExcludeFiles, "patterns-from", nil, "read include/exclude patterns from FILE (borg pattern file)")
	fl.BoolVar(&o.ExcludeCaches, "exclude-caches", false, "skip directories holding a CACHEDIR.TAG")
	fl.StringArrayVar(&o.ExcludeIfPresent, "exclude-if-present", nil, "skip directories holding a file called NAME")
	fl.BoolVarP(&o.OneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	fl.StringArrayVar(&o.Tags, "tag", nil, "tag the snapshot (repeatable)")
	fl.StringVar(&o.Hostname, "hostname", "", "host name recorded in the snapshot (default: this host)")
	fl.BoolVarP(&o.DryRun, "dry-run", "n", false, "list what would be read, with sizes; read no file and write nothing")
	fl.StringArrayVar(&o.FilesFrom, "files-from", nil, "back up the paths listed in FILE, one a line (# comments, globs expanded; - is stdin)")
	fl.StringArrayVar(&o.FilesFromRaw, "files-from-raw", nil, "back up the paths listed in FILE, NUL-separated, taken as they are (find -print0)")
	fl.StringArrayVar(&o.ExcludeListFiles, "exclude-file", nil, "read --exclude patterns from FILE, one a line (# comments)")
	fl.Var(&larger, "exclude-larger-than", "skip files larger than SIZE (e.g. 512MiB, 2G)")
	fl.BoolVar(&stdin, "stdin", false, "back up what is read from stdin as one file (see --stdin-filename)")
	fl.StringVar(&stdinName, "stdin-filename", "stdin", "name of the file --stdin saves, e.g. /dumps/db.sql")
	fl.StringVar(&when, "time", "", "snapshot time instead of now: \"2006-01-02 15:04:05\" (local time) or RFC 3339")
	return cmd
}

// sizeFlag is a byte size with a unit (512MiB, 2G).
type sizeFlag int64

func (s *sizeFlag) String() string { return fmt.Sprint(int64(*s)) }
func (s *sizeFlag) Type() string   { return "size" }
func (s *sizeFlag) Set(v string) error {
	n, err := service.ParseByteSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSnapshotTime reads --time as restic does ("2006-01-02 15:04:05",
// local time), or RFC 3339.
func parseSnapshotTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--time %q: want \"2006-01-02 15:04:05\" (local time) or RFC 3339", s)
}

// createDryRun lists what create would read.
func (f *backupFlags) createDryRun(cmd *cobra.Command, r *backup.Repository, o backup.BackupOptions) error {
	type file struct {
		Path    string `json:"path"`
		PathRaw []byte `json:"path_raw,omitempty"`
		Size    int64  `json:"size"`
		Read    int64  `json:"read"`
		Status  string `json:"status"`
	}
	files := []file{}
	var mu sync.Mutex
	o.DryRunFile = func(p string, size, read int64, status string) {
		mu.Lock()
		files = append(files, file{Path: p, PathRaw: rawBytes(p), Size: size, Read: read, Status: status})
		mu.Unlock()
	}
	o.Warn = func(p string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", quoteName(p), err) }
	sum, err := r.Backup(cmd.Context(), o)
	if err != nil {
		return err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if f.g.json {
		if err := printJSON(cmd, map[string]any{"dry_run": true, "files": files, "summary": sum}); err != nil {
			return err
		}
	} else {
		w := cmd.OutOrStdout()
		for _, e := range files {
			if e.Read != e.Size {
				fmt.Fprintf(w, "would read %s\t%s (%s, %s of data)\n", e.Status, quoteName(e.Path), service.FormatBytes(e.Size), service.FormatBytes(e.Read))
				continue
			}
			fmt.Fprintf(w, "would read %s\t%s (%s)\n", e.Status, quoteName(e.Path), service.FormatBytes(e.Size))
		}
		fmt.Fprintf(w, "dry run: %d new, %d changed, %d unmodified files; would read %s of %s\n",
			sum.FilesNew, sum.FilesChanged, sum.FilesUnmodified, service.FormatBytes(sum.BytesRead), service.FormatBytes(sum.BytesTotal))
	}
	if sum.Errors > 0 {
		return &exitError{code: 3, err: fmt.Errorf("dry run: %d paths could not be read (named above)", sum.Errors)}
	}
	return nil
}

// createStdin saves stdin as one file.
func (f *backupFlags) createStdin(cmd *cobra.Command, r *backup.Repository, name string, o backup.BackupOptions) error {
	sum, err := r.BackupReader(cmd.Context(), name, cmd.InOrStdin(), o)
	if err != nil {
		return err
	}
	if f.g.json {
		return printJSONLine(cmd.OutOrStdout(), map[string]any{"summary": sum})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s saved\ndata:   %s read, %s added (%s stored)\n", sum.SnapshotID[:8],
		service.FormatBytes(sum.BytesRead), service.FormatBytes(sum.BytesAdded), service.FormatBytes(sum.BytesStored))
	return nil
}

// rawBytes is s's bytes when s is not valid UTF-8 (see path_raw).
func rawBytes(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}
