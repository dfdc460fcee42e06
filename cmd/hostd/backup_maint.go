package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

func (f *backupFlags) checkCmd() *cobra.Command {
	var o backup.CheckOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify repository structure, and with --read-data every blob",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			res, err := r.Check(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				if err := printJSON(cmd, res); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%d snapshots, %d packs, %d packs read, %d blobs verified\n", res.Snapshots, res.Packs, res.PacksRead, res.BlobsRead)
				for _, p := range res.Warnings {
					fmt.Fprintf(w, "warning: %s\n", p)
				}
				for _, p := range res.Errors {
					fmt.Fprintf(w, "error: %s\n", p)
				}
				for _, a := range res.Affected {
					fmt.Fprintf(w, "snapshot %s has damaged files:\n", a.Snapshot[:8])
					for _, p := range a.Paths {
						fmt.Fprintf(w, "  %s\n", quoteName(p))
					}
				}
				if res.OK() {
					fmt.Fprintln(w, "no errors found")
				} else if len(res.DamagedPacks) > 0 {
					fmt.Fprintln(w, "hint: hostd backup repair drops the damaged data, so the next backup of the affected paths stores it again")
				}
			}
			if !res.OK() {
				return &exitError{code: 1, err: fmt.Errorf("check found %d errors", len(res.Errors))}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&o.ReadData, "read-data", false, "read, decrypt and verify every pack")
	cmd.Flags().BoolVar(&o.NoLock, "no-lock", false, "do not lock the repository (for one that cannot be written: read-only media, a full disk)")
	cmd.Flags().StringVar(&o.ReadDataSubset, "read-data-subset", "", "verify only a subset of packs: PERCENT% (random) or n/m")
	return cmd
}

func (f *backupFlags) forgetCmd() *cobra.Command {
	var o backup.ForgetOptions
	var group groupByFlag
	var prune bool
	cmd := &cobra.Command{
		Use:   "forget [SNAPSHOT...]",
		Short: "Remove snapshots not kept by the policy, or those named (restic's rule; run prune to free space)",
		Long: `Remove the snapshots the keep options do not keep, or the snapshots named.
The policy is applied to each group of snapshots on its own: by default the
snapshots of one host with the same paths (--group-by host,paths; any of
host, paths and tags, or "" for one group). --host, --path and --tag limit
forget to the snapshots they select. Each group is listed with what was kept
and why. Data is freed by prune (--prune runs it afterwards).`,
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			o.Snapshots = args
			if group.set {
				o.GroupBy = &group.by
			}
			res, err := r.ForgetWith(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := map[string]any{"forget": res}
			if prune && !o.DryRun {
				pr, err := r.Prune(cmd.Context(), backup.PruneOptions{})
				if err != nil {
					return err
				}
				out["prune"] = pr
			}
			if f.g.json {
				return printJSON(cmd, out)
			}
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				fmt.Fprintf(w, "applying policy: %s\n", describePolicy(o.Policy))
			}
			verb := "remove"
			if o.DryRun {
				verb = "would remove"
			}
			for i, g := range res.Groups {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if k := g.Key.String(); k != "" {
					fmt.Fprintf(w, "snapshots for (%s):\n", k)
				}
				if len(g.Keep) > 0 {
					fmt.Fprintf(w, "keep %d snapshots:\n", len(g.Keep))
					if err := forgetTable(cmd, w, g.Keep); err != nil {
						return err
					}
				}
				if len(g.Remove) > 0 {
					fmt.Fprintf(w, "%s %d snapshots:\n", verb, len(g.Remove))
					if err := forgetTable(cmd, w, g.Remove); err != nil {
						return err
					}
				}
			}
			if len(res.Groups) == 0 {
				fmt.Fprintln(w, "no snapshots")
			}
			if pr, ok := out["prune"].(*backup.PruneResult); ok {
				printPrune(cmd, pr)
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	p := &o.Policy
	fl.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	fl.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the N newest hours with snapshots")
	fl.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the N newest days with snapshots")
	fl.IntVar(&p.Weekly, "keep-weekly", 0, "same per ISO week")
	fl.IntVar(&p.Monthly, "keep-monthly", 0, "same per month")
	fl.IntVar(&p.Yearly, "keep-yearly", 0, "same per year")
	fl.Var((*withinFlag)(&p.Within), "keep-within", "keep every snapshot younger than this before the newest (e.g. 72h, 7d, 2w, 1y; m is minutes)")
	fl.StringArrayVar(&p.Tags, "keep-tag", nil, "keep every snapshot with these tags (comma-separated: all of them; repeatable: any one list)")
	addFilterFlags(fl, &o.Filter)
	fl.Var(&group, "group-by", "apply the policy to each group of host, paths and/or tags (default host,paths; \"\" for one group)")
	fl.BoolVarP(&o.DryRun, "dry-run", "n", false, "only show what would be removed")
	fl.BoolVar(&prune, "prune", false, "run prune afterwards")
	return cmd
}

// forgetTable prints forget's decisions with their reasons.
func forgetTable(cmd *cobra.Command, w io.Writer, es []backup.ForgetEntry) error {
	snaps := make([]backup.SnapshotInfo, len(es))
	reasons := make([][]string, len(es))
	for i, e := range es {
		snaps[i], reasons[i] = e.SnapshotInfo, e.Reasons
	}
	return snapshotTable(w, snaps, reasons)
}

// describePolicy says what p keeps, in forget's flags.
func describePolicy(p backup.RetentionPolicy) string {
	var f []string
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		switch {
		case c.n > 0:
			f = append(f, fmt.Sprintf("keep-%s %d", c.name, c.n))
		case c.n < 0:
			f = append(f, fmt.Sprintf("keep-%s all", c.name))
		}
	}
	if p.Within > 0 {
		f = append(f, "keep-within "+p.Within.String())
	}
	for _, t := range p.Tags {
		f = append(f, "keep-tag "+t)
	}
	return strings.Join(f, ", ")
}

// withinFlag is --keep-within: a duration in the config file's units
// (Go's plus d, w and y).
type withinFlag time.Duration

func (w *withinFlag) String() string { return time.Duration(*w).String() }
func (w *withinFlag) Type() string   { return "duration" }
func (w *withinFlag) Set(s string) error {
	d, err := confkit.ParseDuration(s)
	if err != nil {
		return err
	}
	*w = withinFlag(d)
	return nil
}

func printPrune(cmd *cobra.Command, pr *backup.PruneResult) {
	verb := "deleted"
	if pr.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "prune: %d packs, %s unused of %s; %s %d packs, repacked %d into %d, freed %s\n",
		pr.PacksTotal, service.FormatBytes(pr.BytesUnused), service.FormatBytes(pr.BytesBefore), verb, pr.PacksDeleted, pr.PacksRepacked, pr.PacksWritten, service.FormatBytes(pr.BytesFreed))
	if pr.TempFiles > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "prune: %s %d temporary files of interrupted writes (%s)\n", verb, pr.TempFiles, service.FormatBytes(pr.TempBytes))
	}
}

func (f *backupFlags) pruneCmd() *cobra.Command {
	var o backup.PruneOptions
	var maxUnused float64
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot uses, repacking partly used packs",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			o.MaxUnused = &maxUnused
			res, err := r.Prune(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			printPrune(cmd, res)
			return nil
		}),
	}
	cmd.Flags().Float64Var(&maxUnused, "max-unused", 5, "tolerated unused space in partly used packs, percent of the repository (0 repacks every partly used pack)")
	cmd.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "only show what would be deleted")
	return cmd
}

func (f *backupFlags) repairCmd() *cobra.Command {
	var o backup.RepairOptions
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Read every pack and drop damaged data, so the next backup stores it again",
		Long: `Read, decrypt and verify every pack. Intact blobs of damaged packs are
stored in new packs, a new index lists only intact blobs, and the damaged
packs are deleted. Until then, backups of content whose stored copy is
damaged refer to that copy, and prune cannot repack it.

Snapshots that used lost data are listed; their files restore in full
again once a backup has stored the same content anew, so back up the
affected paths after a repair.`,
		Args: cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			res, err := r.Repair(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			w := cmd.OutOrStdout()
			if res.DryRun {
				fmt.Fprintf(w, "repair: %d packs read, %d damaged, %d missing; would store %d intact blobs of damaged packs again and drop %d lost blobs\n",
					res.PacksRead, res.PacksDamaged, res.PacksMissing, res.BlobsSalvaged, res.BlobsLost)
			} else {
				fmt.Fprintf(w, "repair: %d packs read, %d damaged, %d missing; stored %d intact blobs of damaged packs again in %d packs, dropped %d lost blobs, replaced %d index files\n",
					res.PacksRead, res.PacksDamaged, res.PacksMissing, res.BlobsSalvaged, res.PacksWritten, res.BlobsLost, res.IndexFiles)
			}
			lostDir := false
			for _, a := range res.Affected {
				fmt.Fprintf(w, "snapshot %s has files with lost data:\n", a.Snapshot[:8])
				for _, p := range a.Paths {
					if strings.HasSuffix(p, "/") {
						lostDir = true
						fmt.Fprintf(w, "  %s (directory listing lost: nothing below it restores)\n", quoteName(p))
						continue
					}
					fmt.Fprintf(w, "  %s\n", quoteName(p))
				}
			}
			if len(res.Affected) > 0 {
				fmt.Fprintln(w, "back up these paths again: a snapshot's file restores in full once a backup stores its content anew")
			}
			if lostDir {
				fmt.Fprintln(w, "a lost directory listing comes back only from a backup of the same directory, unchanged (entries and metadata)")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "only show what would be dropped")
	return cmd
}

func (f *backupFlags) breakLockCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "break-lock",
		Short: "Remove stale locks (of dead processes or not refreshed for 30 minutes), or all with --all",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			removed, err := r.BreakLocks(cmd.Context(), all)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, removed)
			}
			for _, l := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed lock %s: %s\n", l.ID[:8], l.Lock)
			}
			if len(removed) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no locks removed")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove live locks too (only when no other process uses the repository)")
	return cmd
}
