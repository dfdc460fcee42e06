package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

// addFilterFlags adds restic's snapshot filters --host, --path and --tag.
func addFilterFlags(fl *pflag.FlagSet, f *backup.SnapshotFilter) {
	fl.StringArrayVarP(&f.Hosts, "host", "H", nil, "only snapshots of this host (repeatable)")
	fl.StringArrayVar(&f.Paths, "path", nil, "only snapshots whose paths include this one (repeatable: all of them)")
	fl.StringArrayVar(&f.Tags, "tag", nil, "only snapshots with these tags (comma-separated: all of them; repeatable: any one list; \"\" for untagged)")
}

// groupByFlag is --group-by: host, paths and tags, comma-separated.
type groupByFlag struct {
	by  backup.GroupBy
	set bool
}

func (g *groupByFlag) String() string { return g.by.String() }
func (g *groupByFlag) Type() string   { return "host,paths,tags" }
func (g *groupByFlag) Set(s string) error {
	by, err := backup.ParseGroupBy(s)
	if err != nil {
		return err
	}
	g.by, g.set = by, true
	return nil
}

// snapshotTable prints snapshots as the snapshots verb does; reasons,
// when not nil, adds forget's column.
func snapshotTable(w io.Writer, snaps []backup.SnapshotInfo, reasons [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if reasons != nil {
		fmt.Fprintln(tw, "ID\tTIME\tHOST\tTAGS\tREASONS\tPATHS\tSIZE")
	} else {
		fmt.Fprintln(tw, "ID\tTIME\tHOST\tTAGS\tPATHS\tSIZE")
	}
	for i, s := range snaps {
		size := ""
		if s.Summary != nil {
			size = service.FormatBytes(s.Summary.BytesTotal)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Hostname, strings.Join(s.Tags, ","))
		if reasons != nil {
			fmt.Fprintf(tw, "%s\t", strings.Join(reasons[i], ","))
		}
		fmt.Fprintf(tw, "%s\t%s\n", strings.Join(s.Paths, " "), size)
	}
	return tw.Flush()
}

func (f *backupFlags) tagCmd() *cobra.Command {
	var o backup.TagOptions
	cmd := &cobra.Command{
		Use:   "tag [SNAPSHOT...] {--add TAG | --remove TAG | --set TAG}",
		Short: "Change the tags of snapshots (those named, else all the filters select)",
		Long: `Change the tags of snapshots: --add and --remove (repeatable, together), or
--set to replace them (--set "" removes every tag). The snapshots are those
named ("latest" or ID prefixes), else every snapshot --host, --path and
--tag select. A snapshot whose tags change is written anew, naming the one it
replaces, and gets a new ID.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.SetTags = cmd.Flags().Changed("set")
			if o.SetTags {
				// --set "" means no tags.
				o.Set = slicesDeleteEmpty(o.Set)
			}
			if !o.SetTags && len(o.Add) == 0 && len(o.Remove) == 0 {
				return usageError(cmd, fmt.Errorf("tag: give --add, --remove or --set"))
			}
			if o.SetTags && (len(o.Add) > 0 || len(o.Remove) > 0) {
				return usageError(cmd, fmt.Errorf("tag: --set cannot be combined with --add or --remove"))
			}
			o.Snapshots = args
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			changes, err := r.Tag(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, changes)
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s is now %s, tags [%s]\n", c.OldID[:8], c.NewID[:8], strings.Join(c.Tags, ", "))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d snapshots changed\n", len(changes))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Add, "add", nil, "add this tag (repeatable)")
	fl.StringArrayVar(&o.Remove, "remove", nil, "remove this tag (repeatable)")
	fl.StringArrayVar(&o.Set, "set", nil, "replace the tags by these (repeatable; \"\" for none)")
	addFilterFlags(fl, &o.Filter)
	return cmd
}

func slicesDeleteEmpty(s []string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
