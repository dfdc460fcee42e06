package audio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// running is a Service under test, serving until the test ends.
type running struct {
	*Service
	health *servicetest.Health
	reg    *prometheus.Registry
	dir    string
}

// startService builds the service for the stack pw with cfg (Server is
// filled in) and runs it until the test ends; it waits for the first
// Ready.
func startService(t testing.TB, pw *testenv.PipeWire, cfg Config, opts ...func(*Service)) *running {
	t.Helper()
	cfg.Server = pw.Server
	r := &running{health: &servicetest.Health{}, reg: prometheus.NewRegistry(), dir: t.TempDir()}
	logger := slog.New(slog.DiscardHandler)
	if _, bench := t.(*testing.B); !bench {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	env := service.Env{
		Logger:   logger.With("service", "audio"),
		StateDir: r.dir,
		Metrics:  r.reg,
		Gatherer: r.reg,
		Health:   r.health,
	}
	getenv := func(k string) string {
		for _, kv := range pw.Env() {
			if key, v, ok := strings.Cut(kv, "="); ok && key == k {
				return v
			}
		}
		return ""
	}
	s, err := newService(env, cfg, getenv)
	if err != nil {
		t.Fatalf("new audio service: %v", err)
	}
	for _, o := range opts {
		o(s)
	}
	r.Service = s
	servicetest.Run(t, s)
	r.waitHealth(t, servicetest.IsReady)
	return r
}

// waitHealth waits (10s at most) until the latest health report matches.
func (r *running) waitHealth(t testing.TB, match func(servicetest.Report) bool) servicetest.Report {
	t.Helper()
	return waitHealth(t, r.health, match)
}

// waitHealth waits (10s at most) until h's latest report matches.
func waitHealth(t testing.TB, h *servicetest.Health, match func(servicetest.Report) bool) servicetest.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := h.Wait(ctx, match)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pactlVolume is the volume pactl reports for a sink, as "NN%" per channel.
func pactlVolume(t *testing.T, pw *testenv.PipeWire, kind Kind, name string) []string {
	t.Helper()
	out := pw.Pactl(t, "get-"+string(kind)+"-volume", name)
	var pct []string
	for _, f := range strings.Fields(out) {
		if strings.HasSuffix(f, "%") {
			pct = append(pct, f)
		}
	}
	return pct
}

// waitVolume waits until pactl reports want (for example "40%") on every
// channel.
func waitVolume(t *testing.T, pw *testenv.PipeWire, kind Kind, name, want string) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, func() error {
		got := pactlVolume(t, pw, kind, name)
		for _, g := range got {
			if g != want {
				return fmt.Errorf("%s %s volume is %v, want %s", kind, name, got, want)
			}
		}
		if len(got) == 0 {
			return errors.New("no volume")
		}
		return nil
	})
}

// waitPactl waits until pactl args prints want.
func waitPactl(t *testing.T, pw *testenv.PipeWire, timeout time.Duration, want string, args ...string) {
	t.Helper()
	testenv.WaitFor(t, timeout, func() error {
		out, err := pw.PactlErr(args...)
		if err != nil {
			return err
		}
		if out != want {
			return fmt.Errorf("pactl %s = %q, want %q", strings.Join(args, " "), out, want)
		}
		return nil
	})
}

// metricValue returns the value of the metric name with exactly the given
// labels, or an error.
func metricValue(r *running, name string, labels map[string]string) (float64, error) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), nil
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), nil
			}
		}
		return 0, fmt.Errorf("%s has no series %v", name, labels)
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// wantMetric checks a metric's value to within 0.001.
func wantMetric(t *testing.T, r *running, name string, labels map[string]string, want float64) {
	t.Helper()
	got, err := metricValue(r, name, labels)
	if err != nil {
		t.Error(err)
		return
	}
	if got < want-0.001 || got > want+0.001 {
		t.Errorf("%s%v = %g, want %g", name, labels, got, want)
	}
}
