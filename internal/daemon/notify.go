package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/hostd/hostd/internal/supervisor"
)

// notify sends a message to systemd's $NOTIFY_SOCKET, if any.
func notify(log *slog.Logger, state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "err", err.Error())
	}
}

// notifyLoop sends READY=1 once every enabled service has started and
// STATUS= whenever the summary changes. WATCHDOG=1 is not sent here but by
// the main loop, so that it stops when that loop does.
func (d *Daemon) notifyLoop(ctx context.Context) {
	readySent := false
	lastStatus := ""
	// Readiness is not held back forever by a service that waits for a
	// dependency which never comes.
	startupCap := time.NewTimer(90 * time.Second)
	defer startupCap.Stop()
	for {
		changes := d.tree.Changes()
		summary := d.summary()
		if !readySent && d.tree.Started() {
			notify(d.log, "READY=1\nSTATUS="+summary)
			readySent, lastStatus = true, summary
			// Start-up code is done: release it (before the log line, so
			// that line also says the release is over).
			d.trimCode("ready")
			d.log.Info("hostd ready", "status", summary)
		} else if readySent && summary != lastStatus {
			notify(d.log, "STATUS="+summary)
			lastStatus = summary
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-startupCap.C:
			if !readySent {
				notify(d.log, "READY=1\nSTATUS="+summary)
				readySent, lastStatus = true, summary
				d.log.Warn("reporting ready although some services are still starting", "status", summary)
			}
		}
	}
}

// summary is the one-line status for systemd: counts per state and the
// names of services that are not ready.
func (d *Daemon) summary() string {
	counts := map[supervisor.State]int{}
	var bad []string
	for _, s := range d.tree.Status() {
		counts[s.State]++
		if s.State != supervisor.Ready && s.State != supervisor.Disabled {
			bad = append(bad, fmt.Sprintf("%s %s", s.Name, s.State))
		}
	}
	out := fmt.Sprintf("%d ready", counts[supervisor.Ready])
	if len(bad) > 0 {
		out += "; " + strings.Join(bad, ", ")
	}
	return out
}
