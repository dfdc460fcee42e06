package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/containers"
)

func newContainersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "containers",
		Short: "Inspect and control the Docker auto-pruner",
		Long: `Show the Docker engine hostd prunes, its disk use and the last and next
prune, and prune on demand with the configured filters.`,
	}
	cmd.AddCommand(newContainersStatusCmd(g), newContainersPruneCmd(g))
	return cmd
}

func newContainersStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show engine version, disk use, and the last and next prune",
		Long: `Show the Docker engine's version and API version, the use of the filesystem
holding Docker's root directory against the watermarks, and the last and
next prune.

Exit status: 0 when the engine is reachable, 1 when not, 3 when the daemon
is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := g.client().Raw(cmd.Context(), "GET", api.RouteContainersStatus, nil)
			if err != nil {
				return containersErr(err)
			}
			var st containers.StatusDetails
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode containers status: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				err = printContainersStatus(cmd, &st)
			}
			if err != nil {
				return err
			}
			if !st.Reachable {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func newContainersPruneCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--dry-run]",
		Short: "Remove what the configured filters select, now",
		Long: `Prune stopped containers, unused networks, volumes (if enabled), images and
build cache with the filters of containers.auto_prune, the way the scheduled
prune does, and list every object with its size and the total.

With --dry-run nothing is removed: the list is what a prune would remove.
Objects found in use or gone at removal time are listed as skipped.

Exit status: 0 on success, 1 when the prune failed or stopped early,
3 when the daemon is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A prune is bounded by the daemon (containers.prune_timeout), and
			// by SIGTERM here; the client adds no deadline of its own.
			raw, err := g.client().WithTimeout(0).Raw(cmd.Context(), "POST", api.RouteContainersPrune, containers.PruneRequest{DryRun: dryRun})
			if err != nil {
				return containersErr(err)
			}
			var rep containers.Report
			if err := json.Unmarshal(raw, &rep); err != nil {
				return fmt.Errorf("decode prune report: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				err = printPruneReport(cmd, &rep)
			}
			if err != nil {
				return err
			}
			if rep.Error != "" {
				return &exitError{code: 1, err: fmt.Errorf("prune stopped early: %s", rep.Error)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be removed")
	return cmd
}

func containersErr(err error) error {
	if errors.Is(err, api.ErrNotRunning) {
		return &exitError{code: 3, err: err}
	}
	var he *api.HTTPError
	if errors.As(err, &he) && he.Code == 404 && strings.Contains(he.Msg, "404 page not found") {
		return fmt.Errorf("the containers service is not enabled (containers.enable in the config)")
	}
	return err
}

func printContainersStatus(cmd *cobra.Command, st *containers.StatusDetails) error {
	tw := table(cmd)
	engine := "unreachable: " + st.Error
	if st.Reachable {
		engine = fmt.Sprintf("%s (API %s)", st.EngineVersion, st.APIVersion)
	}
	fmt.Fprintf(tw, "Engine:\t%s\n", engine)
	fmt.Fprintf(tw, "Host:\t%s\n", st.Host)
	if st.DiskSizeBytes > 0 {
		fmt.Fprintf(tw, "Disk:\t%s of %s used (%.1f%%) in %s\n", containersSize(int64(st.DiskUsedBytes)), containersSize(int64(st.DiskSizeBytes)),
			float64(st.DiskUsedBytes)*100/float64(st.DiskSizeBytes), st.RootDir)
	}
	if st.HighWatermark != "" {
		fmt.Fprintf(tw, "Watermarks:\thigh %s, low %s\n", st.HighWatermark, st.LowWatermark)
	} else {
		fmt.Fprintf(tw, "Watermarks:\toff\n")
	}
	if st.LastPrune != nil {
		lp := st.LastPrune
		fmt.Fprintf(tw, "Last prune:\t%s (%s): %d removed, %d skipped, %s reclaimed\n", lp.Finished.Local().Format(time.DateTime),
			lp.Trigger, len(lp.Objects), len(lp.Skipped), containersSize(lp.ReclaimedBytes))
		if lp.Error != "" {
			fmt.Fprintf(tw, "\tstopped early: %s\n", lp.Error)
		}
	} else {
		fmt.Fprintf(tw, "Last prune:\tnone since hostd started\n")
	}
	switch {
	case st.Schedule == "":
		fmt.Fprintf(tw, "Next prune:\tauto_prune off\n")
	case st.NextPrune.IsZero():
		fmt.Fprintf(tw, "Next prune:\t%s\n", st.Schedule)
	default:
		fmt.Fprintf(tw, "Next prune:\t%s (%s)\n", st.NextPrune.Local().Format(time.DateTime), st.Schedule)
	}
	fmt.Fprintf(tw, "Reclaimed:\t%s since hostd started\n", containersSize(st.ReclaimedBytesTotal))
	return tw.Flush()
}

func printPruneReport(cmd *cobra.Command, rep *containers.Report) error {
	w := cmd.OutOrStdout()
	tw := table(cmd)
	fmt.Fprintln(tw, "KIND\tID\tNAME\tSIZE\tREASON")
	for _, o := range rep.Objects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Kind, containersShortID(o.ID), o.Name, containersSize(o.Size), o.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w)
		tw = table(cmd)
		fmt.Fprintln(tw, "SKIPPED\tID\tNAME\tERROR")
		for _, s := range rep.Skipped {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, containersShortID(s.ID), s.Name, s.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if rep.DryRun {
		_, err := fmt.Fprintf(w, "\nWould remove %d objects, %s in total.\n", len(rep.Objects), containersSize(rep.TotalBytes))
		return err
	}
	_, err := fmt.Fprintf(w, "\nRemoved %d objects, reclaimed %s.\n", len(rep.Objects), containersSize(rep.ReclaimedBytes))
	return err
}

func containersShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func containersSize(n int64) string {
	if n < 0 {
		return "-"
	}
	return service.FormatBytes(n)
}
