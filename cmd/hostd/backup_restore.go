package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) restoreCmd() *cobra.Command {
	var o backup.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR",
		Short: "Restore a snapshot into a directory (refuses a non-empty one without --overwrite)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Target == "" {
				return errors.New("restore: --target is required")
			}
			f.prefetchSnapshots = true
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			prog := newProgress(cmd, f.g.json, "restore")
			if prog.shown() {
				o.Progress = prog.update
			}
			o.Warn = func(p string, err error) { prog.warn(p, err) }
			sum, err := r.Restore(cmd.Context(), args[0], o)
			prog.finish()
			if errors.Is(err, backup.ErrTargetNotEmpty) {
				return fmt.Errorf("%w\nhint: pass --overwrite to restore into it", err)
			}
			if err != nil {
				return err
			}
			if f.g.json {
				if err := printJSONLine(cmd.OutOrStdout(), map[string]any{"summary": sum}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s to %s: %d files, %d dirs, %d hard links, %d special, %s in %s\n",
					sum.SnapshotID[:8], o.Target, sum.Files, sum.Dirs, sum.HardLinks, sum.Special, service.FormatBytes(sum.Bytes), sum.Duration.Round(time.Millisecond))
				if o.Verify {
					fmt.Fprintf(cmd.OutOrStdout(), "verified %d files against the snapshot\n", sum.Verified)
				}
			}
			if sum.Errors > 0 {
				return &exitError{code: 3, err: fmt.Errorf("partial restore: %d paths failed (named above)", sum.Errors)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.Target, "target", "t", "", "directory to restore into")
	cmd.Flags().StringArrayVarP(&o.Include, "include", "i", nil, "restore only this snapshot path and what is below it (repeatable)")
	cmd.Flags().StringArrayVarP(&o.Exclude, "exclude", "e", nil, "leave out snapshot paths matching PATTERN (borg style, as create's; repeatable)")
	cmd.Flags().BoolVar(&o.Verify, "verify", false, "read every restored file back and check it against the snapshot")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "restore into a non-empty target, replacing files")
	cmd.Flags().BoolVar(&o.NoLock, "no-lock", false, "do not lock the repository (for one that cannot be written: read-only media, a full disk)")
	return cmd
}

func (f *backupFlags) dumpCmd() *cobra.Command {
	var o backup.DumpOptions
	cmd := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write a file of a snapshot to stdout, or a directory as a tar (or zip) archive",
		Long: `Write a file of a snapshot to stdout as its bytes, or a directory (or /)
with everything below it as an archive: tar (PAX: modes, owners, nanosecond
times, symlinks, hard links, devices, FIFOs and extended attributes) or, with
--archive zip, zip. Members are named by their snapshot paths without the
leading /, so extracting lays them out as restore does.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.Archive != "tar" && o.Archive != "zip" {
				return fmt.Errorf("--archive %q: want tar or zip", o.Archive)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			return r.DumpTo(cmd.Context(), args[0], args[1], o, cmd.OutOrStdout())
		}),
	}
	cmd.Flags().StringVarP(&o.Archive, "archive", "a", "tar", "archive format of a directory: tar or zip")
	return cmd
}
