package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hostd/hostd/pkg/backup"
)

// progress shows a bar on a terminal, JSON lines with --json, and
// nothing otherwise; warnings always go to stderr.
type progress struct {
	cmd  *cobra.Command
	json bool
	kind string
	mu   sync.Mutex
	bar  *progressbar.ProgressBar
}

func newProgress(cmd *cobra.Command, jsonOut bool, kind string) *progress {
	p := &progress{cmd: cmd, json: jsonOut, kind: kind}
	if !jsonOut && term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription(kind),
		)
	}
	return p
}

// shown reports whether progress is printed at all: a bar on a terminal,
// or lines with --json.
func (p *progress) shown() bool { return p.json || p.bar != nil }

func (p *progress) update(pr backup.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.json:
		_ = printJSONLine(p.cmd.OutOrStdout(), map[string]any{"progress": p.kind, "state": pr})
	case p.bar != nil:
		if pr.BytesTotal > 0 {
			p.bar.ChangeMax64(pr.BytesTotal)
		}
		p.bar.Describe(fmt.Sprintf("%s %d/%d files", p.kind, pr.FilesDone, pr.FilesTotal))
		_ = p.bar.Set64(pr.BytesDone)
	}
}

func (p *progress) warn(path string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	if p.json {
		_ = printJSONLine(p.cmd.OutOrStdout(), map[string]any{"warning": err.Error(), "path": path})
		return
	}
	fmt.Fprintf(p.cmd.ErrOrStderr(), "warning: %s: %v\n", quoteName(path), err)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func printJSONLine(w io.Writer, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
