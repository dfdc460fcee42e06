package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon and every service, like systemctl status",
		Long: `Show the daemon (version, uptime, config) and each service: state, for
how long, restarts, last error and its key facts.

Exit status: 0 when every enabled service is ready, 1 when any is not,
3 when the daemon is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := g.client().Raw(cmd.Context(), "GET", api.RouteStatus, nil)
			if errors.Is(err, api.ErrNotRunning) {
				return &exitError{code: 3, err: err}
			}
			if err != nil {
				return err
			}
			var st api.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode status: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				printStatus(cmd, st, time.Now())
			}
			if err != nil {
				return err
			}
			if !st.Ready {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func printStatus(cmd *cobra.Command, st api.Status, now time.Time) {
	out := cmd.OutOrStdout()
	mark := "●"
	overall := "ready"
	if !st.Ready {
		overall = "not ready"
	}
	fmt.Fprintf(out, "%s hostd %s: %s\n", mark, st.Version, overall)
	fmt.Fprintf(out, "   running: since %s; %s (pid %d)\n", st.StartedAt.Local().Format(time.DateTime),
		human(time.Duration(st.UptimeSeconds*float64(time.Second))), st.PID)
	cfg := st.ConfigFile
	if cfg == "" {
		cfg = "(embedded defaults)"
	}
	fmt.Fprintf(out, "    config: %s (loaded %s ago)\n", cfg, human(now.Sub(st.ConfigLoadedAt)))
	fmt.Fprintf(out, "     state: %s\n\n", st.StateDir)
	tw := table(cmd)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tFOR\tRESTARTS\tINFO")
	for _, s := range st.Services {
		info := s.Summary
		switch {
		case len(s.WaitingFor) > 0:
			info = "waiting for " + strings.Join(s.WaitingFor, ", ")
		case s.State != "ready" && s.State != "disabled" && s.LastError != "":
			info = s.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, human(now.Sub(s.Since)), s.Restarts, oneLine(info))
	}
	_ = tw.Flush()
	for _, s := range st.Services {
		if s.LastError != "" && s.State == "ready" && s.LastErrorAt != nil {
			fmt.Fprintf(out, "\n%s: last error %s ago: %s", s.Name, human(now.Sub(*s.LastErrorAt)), oneLine(s.LastError))
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// human prints a duration the way systemctl does: "3h 2min", "12s".
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dmin %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dmin", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
