package daemon

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/hostd/hostd/internal/codepages"
)

// trimCode releases the executable's pages when hostd.code_trim_interval
// is not 0, and logs what it did.
func (d *Daemon) trimCode(when string) {
	if d.codeTrimInterval() == 0 {
		return
	}
	before := codepages.ResidentFileKiB()
	if _, err := codepages.Release(); err != nil {
		d.log.Warn("could not release executable pages", "when", when, "err", err.Error())
		return
	}
	d.log.Debug("released executable pages", "when", when, "rss_file_kib_before", before, "rss_file_kib_after", codepages.ResidentFileKiB())
}

func (d *Daemon) codeTrimInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Core.CodeTrimInterval
}

// codeTrimLoop releases the executable's pages every
// hostd.code_trim_interval, following reloads, until ctx is done.
func (d *Daemon) codeTrimLoop(ctx context.Context) {
	for {
		wait := d.codeTrimInterval()
		if wait == 0 {
			wait = time.Minute // off; look at the setting again later
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			d.trimCode("interval")
		}
	}
}

// releaseMemory is service.Env.ReleaseMemory: after a burst of work it
// collects the garbage and returns free heap pages to the system at once
// (the collector's target still reflects the burst's peak, so the next
// collection and the scavenger would take minutes), and releases the
// executable's pages the work faulted in, as at start.
func (d *Daemon) releaseMemory() {
	debug.FreeOSMemory()
	d.trimCode("after work")
}
