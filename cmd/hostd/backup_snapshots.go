package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) snapshotsCmd() *cobra.Command {
	var filter backup.SnapshotFilter
	var group groupByFlag
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots (--host, --path, --tag select; --group-by groups them)",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			groups, err := r.SnapshotGroups(cmd.Context(), filter, group.by)
			if err != nil {
				return err
			}
			if !group.set || group.by.None() {
				snaps := []backup.SnapshotInfo{}
				for _, g := range groups {
					snaps = append(snaps, g.Snapshots...)
				}
				if f.g.json {
					return printJSON(cmd, snaps)
				}
				return snapshotTable(cmd.OutOrStdout(), snaps, nil)
			}
			if f.g.json {
				return printJSON(cmd, groups)
			}
			w := cmd.OutOrStdout()
			for i, g := range groups {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "snapshots for (%s):\n", g.Key)
				if err := snapshotTable(w, g.Snapshots, nil); err != nil {
					return err
				}
				fmt.Fprintf(w, "%d snapshots\n", len(g.Snapshots))
			}
			return nil
		}),
	}
	addFilterFlags(cmd.Flags(), &filter)
	cmd.Flags().Var(&group, "group-by", "group snapshots by host, paths and/or tags (comma-separated)")
	return cmd
}

func (f *backupFlags) lsCmd() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List files of a snapshot (\"latest\" or an ID prefix)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			dir := "/"
			if len(args) == 2 {
				dir = args[1]
			}
			entries, err := r.Ls(cmd.Context(), args[0], dir)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, entries)
			}
			w := table(cmd)
			for _, e := range entries {
				p := quoteName(e.Path)
				if e.LinkTarget != "" {
					p += " -> " + quoteName(e.LinkTarget)
				}
				if long {
					owner := e.User
					if owner == "" {
						owner = fmt.Sprint(e.UID)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Type, e.Mode, owner, e.Size, e.MTime.Local().Format("2006-01-02 15:04:05"), p)
				} else {
					fmt.Fprintln(w, p)
				}
			}
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show type, mode, owner, size and mtime")
	return cmd
}

// quoteName makes names with newlines or invalid UTF-8 printable on one
// line.
func quoteName(s string) string {
	if strings.ContainsAny(s, "\n\t\r") || !isPrintable(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || r < 0x20 {
			return false
		}
	}
	return true
}

func (f *backupFlags) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff SNAPSHOT-A SNAPSHOT-B",
		Short: "Show what changed between two snapshots (+ added, - removed, M modified, T type changed)",
		Args:  cobra.ExactArgs(2),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			changes, err := r.Diff(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, changes)
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", c.Op, quoteName(c.Path))
			}
			return nil
		}),
	}
}

func (f *backupFlags) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show repository size and counts",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			st, err := r.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, st)
			}
			w := table(cmd)
			fmt.Fprintf(w, "location\t%s\nsnapshots\t%d\npacks\t%d (%s)\nblobs\t%d\nindex files\t%d\nsize on disk\t%s\ncompression\t%s\n",
				st.Location, st.Snapshots, st.Packs, service.FormatBytes(st.PackBytes), st.Blobs, st.IndexFiles, service.FormatBytes(st.SizeOnDisk), compressionName(st.Compression))
			return w.Flush()
		}),
	}
}
