package metrics

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// fixtureNow is the clock of collectors reading testdata.
var fixtureNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixtureHostOptions points the collectors at the /proc and /sys copies
// under testdata.
func fixtureHostOptions() HostOptions {
	return HostOptions{
		ProcPath: "testdata/proc",
		SysPath:  "testdata/sys",
		UdevPath: "testdata/udev",
		Now:      func() time.Time { return fixtureNow },
	}
}

// newFixtureCollector builds the named collectors over testdata.
func newFixtureCollector(t testing.TB, logger *slog.Logger, names ...string) *NodeCollector {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := newHost(fixtureHostOptions(), logger)
	if err != nil {
		t.Fatalf("open fixture host: %v", err)
	}
	n, err := newNodeCollector(h, names, logger)
	if err != nil {
		t.Fatalf("create collectors %v: %v", names, err)
	}
	return n
}

// exposition gathers c into the Prometheus text format.
func exposition(t testing.TB, cs ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register collector: %v", err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encode %s: %v", mf.GetName(), err)
		}
	}
	return buf.String()
}
