package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) createCmd() *cobra.Command {
	var o backup.BackupOptions
	cmd := &cobra.Command{
		Use:     "create PATH...",
		Aliases: []string{"backup"},
		Short:   "Back up paths as a new snapshot",
		Long: `Back up paths as a new snapshot. Excludes use borg's pattern styles: sh: (default),
fm:, re:, pp:, pf:. --patterns-from reads borg pattern files (+ include, - exclude,
! exclude without descending, P style, R path to back up). Exit status 3 means some
files could not be read, or a path did not exist: the snapshot exists without them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(o.ExcludeFiles) == 0 {
				return errors.New("no paths to back up: give PATH... (or R lines in a --patterns-from file)")
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			o.Paths = args
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
	return cmd
}
