package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/jobs"
)

// addBackupJobCmds adds the verbs of the daemon's scheduled backup jobs
// to "hostd backup": run JOB and jobs.
func addBackupJobCmds(parent *cobra.Command, g *globals) {
	parent.AddCommand(newBackupRunCmd(g), newBackupJobsCmd(g))
}

func newBackupRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run JOB",
		Short: "Run a scheduled backup job now and follow its progress",
		Long: `Ask the daemon to run the backup job JOB now (as configured under backup
in hostd's config) and follow it until it ends. If the job is already
running, follow that run instead of starting another. Interrupting this
command does not stop the run.

With --json, print the daemon's events as JSON lines.
Exit status: 0 success, 1 failure, 3 partial (some files could not be read).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			tty := isTerminal(out)
			var last *jobs.RunResult
			var lastLine int
			err := g.client().Stream(cmd.Context(), http.MethodPost, api.RouteBackupRun, jobs.RunRequest{Job: args[0]}, func(line json.RawMessage) error {
				var ev jobs.RunEvent
				if err := json.Unmarshal(line, &ev); err != nil {
					return fmt.Errorf("decode event: %w", err)
				}
				if ev.Type == jobs.EventDone {
					last = ev.Result
				}
				if g.json {
					_, err := fmt.Fprintf(out, "%s\n", line)
					return err
				}
				text := describeEvent(ev)
				if text == "" {
					return nil
				}
				if tty && ev.Type == jobs.EventProgress {
					// Redraw one status line in place.
					fmt.Fprintf(out, "\r%-*s", lastLine, text)
					lastLine = len(text)
					return nil
				}
				if lastLine > 0 {
					fmt.Fprintln(out)
					lastLine = 0
				}
				fmt.Fprintln(out, text)
				return nil
			})
			if err != nil {
				return err
			}
			if last == nil {
				return errors.New("the daemon ended the stream before the run finished")
			}
			switch last.Result {
			case jobs.ResultSuccess:
				return nil
			case jobs.ResultPartial:
				return &exitError{code: 3}
			}
			return &exitError{code: 1}
		},
	}
}

// describeEvent is the human form of one run event.
func describeEvent(ev jobs.RunEvent) string {
	switch ev.Type {
	case jobs.EventStarted:
		return fmt.Sprintf("%s: started", ev.Job)
	case jobs.EventJoined:
		return fmt.Sprintf("%s: already running; following that run", ev.Job)
	case jobs.EventWaiting:
		return fmt.Sprintf("%s: waiting for another job on the same repository", ev.Job)
	case jobs.EventPhase:
		return fmt.Sprintf("%s: %s", ev.Job, ev.Phase)
	case jobs.EventProgress:
		if ev.Progress != nil {
			return fmt.Sprintf("%s: %s", ev.Job, describeProgress(*ev.Progress))
		}
	case jobs.EventDone:
		if ev.Result != nil {
			return describeResult(ev.Job, *ev.Result)
		}
	}
	return ""
}

func describeProgress(p backup.Progress) string {
	s := fmt.Sprintf("%d", p.FilesDone)
	if p.ScanDone {
		s += fmt.Sprintf("/%d", p.FilesTotal)
	}
	s += fmt.Sprintf(" files, %s", service.FormatBytes(p.BytesDone))
	if p.ScanDone && p.BytesTotal > 0 {
		s += fmt.Sprintf("/%s (%d%%)", service.FormatBytes(p.BytesTotal), p.BytesDone*100/p.BytesTotal)
	}
	if secs := p.Elapsed.Seconds(); secs > 0 {
		s += fmt.Sprintf(", %s/s", service.FormatBytes(int64(float64(p.BytesDone)/secs)))
	}
	if p.Errors > 0 {
		s += fmt.Sprintf(", %d unreadable", p.Errors)
	}
	return s
}

func describeResult(job string, r jobs.RunResult) string {
	s := fmt.Sprintf("%s: %s in %s", job, r.Result, roundDuration(time.Duration(r.DurationSeconds*float64(time.Second))))
	if sum := r.Summary; sum != nil && sum.SnapshotID != "" {
		s += fmt.Sprintf("; snapshot %.8s: %d files (%d new, %d changed), %s added",
			sum.SnapshotID, sum.FilesNew+sum.FilesChanged+sum.FilesUnmodified, sum.FilesNew, sum.FilesChanged, service.FormatBytes(sum.BytesAdded))
	}
	if r.Retention != "" {
		s += "\n  retention: " + r.Retention
	}
	if r.Check != "" {
		s += "\n  check: " + r.Check
	}
	if r.Error != "" {
		s += "\n  error: " + r.Error
	}
	return s
}

func newBackupJobsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "jobs",
		Short: "List the scheduled backup jobs: last result, duration, bytes added, next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := g.client().Raw(cmd.Context(), http.MethodGet, api.RouteBackupJobs, nil)
			if err != nil {
				return err
			}
			if g.json {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			var list jobs.JobList
			if err := json.Unmarshal(raw, &list); err != nil {
				return fmt.Errorf("decode job list: %w", err)
			}
			printJobs(cmd, list, time.Now())
			return nil
		},
	}
}

func printJobs(cmd *cobra.Command, list jobs.JobList, now time.Time) {
	tw := table(cmd)
	fmt.Fprintln(tw, "JOB\tLAST RESULT\tLAST RUN\tDURATION\tADDED\tNEXT RUN\tPROBLEM")
	for _, j := range list.Jobs {
		result := j.LastResult
		switch {
		case j.State != "idle" && j.Progress != nil && j.Progress.BytesTotal > 0:
			result = fmt.Sprintf("%s %d%%", j.State, j.Progress.BytesDone*100/j.Progress.BytesTotal)
		case j.State != "idle":
			result = j.State
		case result == "":
			result = "never ran"
		}
		lastRun, dur, added, next := "-", "-", "-", "never"
		if j.LastRun != nil {
			lastRun = human(now.Sub(*j.LastRun)) + " ago"
			dur = roundDuration(time.Duration(j.LastDurationSeconds * float64(time.Second))).String()
		}
		if j.LastSuccess != nil {
			added = service.FormatBytes(j.BytesAdded)
		}
		if j.NextRun != nil {
			next = j.NextRun.Local().Format("2006-01-02 15:04")
		}
		problem := j.Problem
		if problem == "" {
			problem = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, result, lastRun, dur, added, next, problem)
	}
	_ = tw.Flush()
}

// roundDuration keeps two or three significant figures: 85ms, 1.2s, 1m12s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
