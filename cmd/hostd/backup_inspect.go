package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) findCmd() *cobra.Command {
	var o backup.FindOptions
	var newer, older string
	cmd := &cobra.Command{
		Use:   "find PATTERN",
		Short: "Find files by name across snapshots (--newer/--older by mtime)",
		Long: `Find the files, directories and links whose name matches PATTERN (a shell
pattern: '*.conf'; with a /, matched against the whole path) in every snapshot
--host, --path and --tag select, or in those named with --snapshot.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return err
			}
			var err error
			if newer != "" {
				if o.Newer, err = parseSnapshotTime(newer); err != nil {
					return fmt.Errorf("--newer: %w", err)
				}
			}
			if older != "" {
				if o.Older, err = parseSnapshotTime(older); err != nil {
					return fmt.Errorf("--older: %w", err)
				}
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			o.Pattern = args[0]
			res, err := r.Find(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			w := cmd.OutOrStdout()
			for i, fr := range res {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "found in snapshot %s from %s:\n", fr.Snapshot.ShortID, fr.Snapshot.Time.Local().Format("2006-01-02 15:04:05"))
				tw := table(cmd)
				for _, e := range fr.Matches {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", e.Type, e.Mode, e.Size, e.MTime.Local().Format("2006-01-02 15:04:05"), quoteName(e.Path))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&newer, "newer", "", "only files modified after this time (\"2006-01-02 15:04:05\", local)")
	fl.StringVar(&older, "older", "", "only files modified before this time")
	fl.StringArrayVarP(&o.Snapshots, "snapshot", "s", nil, "search only this snapshot (repeatable)")
	addFilterFlags(fl, &o.Filter)
	return cmd
}

func (f *backupFlags) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list " + strings.Join(backup.ListKinds, "|"),
		Short: "List the IDs of a kind of repository file (or of the indexed blobs)",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return err
			}
			if !slices.Contains(backup.ListKinds, args[0]) {
				return fmt.Errorf("list %q: want one of %s", args[0], strings.Join(backup.ListKinds, ", "))
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			items, err := r.List(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, items)
			}
			for _, it := range items {
				if it.Type != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s %d\n", it.Type, it.ID, it.Size)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), it.ID)
			}
			return nil
		}),
	}
}

func (f *backupFlags) catCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat config | " + strings.Join(backup.CatKinds[1:], "|") + " ID",
		Short: "Print a repository object, decrypted and verified (JSON; a data blob as its bytes)",
		Long: `Print one repository object for debugging: config; key ID (the key file as
stored; the master key stays sealed); snapshot ID or latest; index ID; pack ID
(its header: blobs, offsets, lengths); tree ID (JSON); blob ID (a data blob's
bytes). IDs may be unique prefixes. --json prints the same JSON (a data blob as
base64 in {"data": ...}).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.RangeArgs(1, 2)(cmd, args); err != nil {
				return err
			}
			if !slices.Contains(backup.CatKinds, args[0]) {
				return fmt.Errorf("cat %q: want one of %s", args[0], strings.Join(backup.CatKinds, ", "))
			}
			if (args[0] == "config") != (len(args) == 1) {
				return fmt.Errorf("cat %s: want %s", args[0], map[bool]string{true: "no ID", false: "an ID"}[args[0] == "config"])
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			b, err := r.Cat(cmd.Context(), args[0], ref)
			if err != nil {
				return err
			}
			if f.g.json && !json.Valid(b) {
				return printJSON(cmd, map[string][]byte{"data": b})
			}
			_, err = cmd.OutOrStdout().Write(b)
			if err == nil && json.Valid(b) && !strings.HasSuffix(string(b), "\n") {
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return err
		}),
	}
}
