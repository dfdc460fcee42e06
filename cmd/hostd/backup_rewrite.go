package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) rewriteCmd() *cobra.Command {
	var o backup.RewriteOptions
	cmd := &cobra.Command{
		Use:   "rewrite [SNAPSHOT...] --exclude PATTERN [--exclude-file FILE] [--forget] [--dry-run]",
		Short: "Write snapshots anew without the paths given (a secret backed up by mistake)",
		Long: `Write new snapshots without the paths --exclude and --exclude-file match
(borg styles, default sh, as create's: '**/id_rsa', 'pp:/etc/secret'), with
everything below them. The snapshots are those named ("latest" or ID
prefixes), else every snapshot --host, --path and --tag select. Directories
on the way to an excluded path get new trees; everything else is reused, so
no file data is read. A snapshot in which nothing matches is left alone.

The new snapshot keeps the time, host, paths and tags of the old one and
names it as its original. The old one is kept, and the new one tagged
"rewrite", unless --forget removes it; its data is freed by prune.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(o.Excludes) == 0 && len(o.ExcludeFiles) == 0 {
				return usageError(cmd, errors.New("rewrite: give --exclude or --exclude-file"))
			}
			o.Snapshots = args
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.Rewrite(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			w := cmd.OutOrStdout()
			n := 0
			for _, x := range res {
				if len(x.Removed) == 0 {
					continue
				}
				n++
				switch {
				case o.DryRun:
					fmt.Fprintf(w, "snapshot %s: would remove\n", x.Snapshot.ShortID)
				case x.Forgotten:
					fmt.Fprintf(w, "snapshot %s replaced by %s, removed\n", x.Snapshot.ShortID, x.NewID[:8])
				default:
					fmt.Fprintf(w, "snapshot %s rewritten as %s\n", x.Snapshot.ShortID, x.NewID[:8])
				}
				for _, c := range x.Removed {
					fmt.Fprintf(w, "  - %s\n", quoteName(c.Path))
				}
			}
			verb := "rewritten"
			if o.DryRun {
				verb = "would be rewritten"
			}
			fmt.Fprintf(w, "%d of %d snapshots %s\n", n, len(res), verb)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Excludes, "exclude", "e", nil, "leave out snapshot paths matching PATTERN and what is below them (repeatable; borg styles, default sh)")
	fl.StringArrayVar(&o.ExcludeFiles, "exclude-file", nil, "read --exclude patterns from FILE, one a line (# comments)")
	fl.BoolVar(&o.Forget, "forget", false, "remove each rewritten snapshot once its replacement is saved (prune frees the data)")
	fl.BoolVarP(&o.DryRun, "dry-run", "n", false, "list what would be removed; write nothing")
	addFilterFlags(fl, &o.Filter)
	return cmd
}
