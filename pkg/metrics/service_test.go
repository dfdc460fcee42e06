package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// fixtureConfig runs the collectors that read only testdata.
func fixtureConfig() Config {
	c := DefaultConfig()
	c.Interval = time.Hour // tests scrape by hand
	c.ProcPath, _ = filepath.Abs("testdata/proc")
	c.SysPath, _ = filepath.Abs("testdata/sys")
	c.Collectors = []string{"cpu", "loadavg", "meminfo", "netdev", "diskstats", "stat"}
	return c
}

type runningService struct {
	*Service
	reg    *prometheus.Registry
	health *servicetest.Health
	logs   *servicetest.Logs
	stop   func() error
}

// startService runs the metrics service in stateDir until the test ends or
// stop is called, and waits for its first scrape.
func startService(t *testing.T, stateDir string, cfg Config) *runningService {
	t.Helper()
	return startServiceEnv(t, stateDir, cfg, nil)
}

// startServiceWithSecrets is startService with a secrets resolver reading
// the environment.
func startServiceWithSecrets(t *testing.T, cfg Config) *runningService {
	t.Helper()
	return startServiceEnv(t, t.TempDir(), cfg, secrets.NewResolver(t.TempDir(), ""))
}

func startServiceEnv(t *testing.T, stateDir string, cfg Config, res *secrets.Resolver) *runningService {
	t.Helper()
	reg := prometheus.NewRegistry()
	return startServiceWith(t, service.Env{StateDir: stateDir, Metrics: reg, Gatherer: reg, Secrets: res}, cfg)
}

// startServiceWith runs the metrics service in env (its logger and
// health made here) until the test ends or stop is called, and waits
// for its first scrape.
func startServiceWith(t *testing.T, env service.Env, cfg Config) *runningService {
	t.Helper()
	reg, _ := env.Metrics.(*prometheus.Registry)
	health := &servicetest.Health{}
	logs := &servicetest.Logs{}
	env.Logger = slog.New(slog.NewTextHandler(logs, nil)).With("service", "metrics")
	env.Health = health
	s, err := New(env, cfg)
	if err != nil {
		t.Fatalf("new metrics service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("Serve did not return within 30s of cancel")
		}
	}
	t.Cleanup(func() { _ = stop() })
	testenv.WaitFor(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("Serve returned early: %v\n%s", err, logs.String())
		default:
		}
		if d := s.Status().Details.(StatusDetails); d.LastScrape.IsZero() {
			return errors.New("no scrape yet")
		}
		return nil
	})
	return &runningService{Service: s, reg: reg, health: health, logs: logs, stop: stop}
}

func TestServiceServesQueriesAndStatus(t *testing.T) {
	rs := startService(t, t.TempDir(), fixtureConfig())
	srv := httptest.NewServer(rs.PublicHTTP())
	defer srv.Close()

	if _, err := rs.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, r := promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {"node_load1"}})
	if r.Status != "success" || !strings.Contains(string(r.Data), `"0.5"]`) {
		t.Fatalf("node_load1 = %s", r.raw)
	}
	// The service's own metrics are scraped too.
	_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {"hostd_metrics_tsdb_head_series > 100"}})
	if !strings.Contains(string(r.Data), "hostd_metrics_tsdb_head_series") {
		t.Fatalf("hostd_metrics_tsdb_head_series > 100: %s", r.raw)
	}
	_, r = promGet(t, srv.URL, "/api/v1/metadata", url.Values{"metric": {"node_cpu_seconds_total"}})
	if !strings.Contains(string(r.Data), `"type":"counter","help":"Seconds the CPUs spent in each mode."`) {
		t.Fatalf("metadata: %s", r.raw)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script src="app.js">`) {
		t.Fatalf("dashboard: %d %.200s", resp.StatusCode, body)
	}
	if r, _ := rs.health.Last(); !r.Ready {
		t.Fatalf("health %q, want ready", r)
	}
	st := rs.Status()
	d := st.Details.(StatusDetails)
	if d.HeadSeries < 100 || d.LastSamples < 100 || d.Retention != "15d" || len(d.Collectors) != 6 {
		t.Fatalf("status %+v", d)
	}
	if !strings.Contains(st.Summary, "series") || !strings.Contains(st.Summary, "keep 15d") {
		t.Fatalf("summary %q", st.Summary)
	}
	if err := rs.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v", err)
	}
	_, r = promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {"node_load1"}})
	if r.Status != "error" {
		t.Fatalf("query after stop: %s", r.raw)
	}
}

// corruptWAL damages the WAL after its first two records, as a crash in
// the middle of a write does.
func corruptWAL(t *testing.T, dir string) {
	t.Helper()
	walDir := filepath.Join(dir, "wal")
	segs, err := os.ReadDir(walDir)
	if err != nil {
		t.Fatal(err)
	}
	var seg string
	for _, e := range segs {
		if !e.IsDir() && strings.Trim(e.Name(), "0123456789") == "" {
			seg = filepath.Join(walDir, e.Name())
			break
		}
	}
	if seg == "" {
		t.Fatalf("no WAL segment in %s", walDir)
	}
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := wlog.NewReader(bufio.NewReader(f))
	if !r.Next() || !r.Next() {
		t.Fatalf("WAL %s has fewer than 2 records: %v", seg, r.Err())
	}
	if _, err := f.WriteAt([]byte{99}, r.Offset()); err != nil {
		t.Fatal(err)
	}
}

func TestServiceRepairsCorruptedWAL(t *testing.T) {
	state := t.TempDir()
	rs := startService(t, state, fixtureConfig())
	for i := 0; i < 3; i++ {
		if _, err := rs.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	corruptWAL(t, filepath.Join(state, "tsdb"))

	rs = startService(t, state, fixtureConfig())
	d := rs.Status().Details.(StatusDetails)
	if d.WALRepairs != 1 {
		t.Fatalf("wal repairs %d, want 1", d.WALRepairs)
	}
	if !strings.Contains(rs.Status().Summary, "WAL repaired 1x") {
		t.Fatalf("summary %q does not report the repair", rs.Status().Summary)
	}
	if !strings.Contains(rs.logs.String(), "write-ahead log was corrupted and has been repaired") {
		t.Fatalf("repair not logged:\n%s", rs.logs.String())
	}
	if v := testutil.ToFloat64(rs.walRepairs); v != 1 {
		t.Fatalf("hostd_metrics_wal_repairs_total = %v", v)
	}
	if r, _ := rs.health.Last(); !r.Ready {
		t.Fatalf("health after repair %q", r)
	}
}

// TestServiceDegradedWhenDiskFull keeps the TSDB on a 16 MiB tmpfs, fills
// it, and checks the service reports itself degraded with the reason and
// recovers when space is freed, without returning from Serve.
func TestServiceDegradedWhenDiskFull(t *testing.T) {
	testenv.RequireRoot(t)
	state := testenv.TempDir(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", state).CombinedOutput(); err != nil {
		testenv.Require(t, "tmpfs mount", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", state).Run() })
	rs := startService(t, state, fixtureConfig())

	filler := filepath.Join(state, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC
		}
	}
	f.Close()
	testenv.WaitFor(t, 30*time.Second, func() error {
		_, err := rs.Scrape(context.Background())
		if err == nil {
			return errors.New("scrape still succeeds on a full disk")
		}
		return nil
	})
	if r, _ := rs.health.Last(); !servicetest.IsDegraded("no space left on device")(r) {
		t.Fatalf("health %q on a full disk, want degraded because it is full", r)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		_, err := rs.Scrape(context.Background())
		return err
	})
	if r, _ := rs.health.Last(); !r.Ready {
		t.Fatalf("health %q after space was freed", r)
	}
	if got := strings.Count(rs.logs.String(), "cannot store metrics"); got != 1 {
		t.Fatalf("disk-full error logged %d times, want once:\n%s", got, rs.logs.String())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // "path: message part"
	}{
		{"defaults", func(*Config) {}, nil},
		{"netstat only", func(c *Config) { c.Collectors = []string{"netstat"} }, nil},
		{"short interval", func(c *Config) { c.Interval = 100 * time.Millisecond }, []string{"metrics.interval: must be at least 1s"}},
		{"unknown collector", func(c *Config) { c.Collectors = []string{"cpu", "gpu", "cpu"} }, []string{
			`metrics.collectors[1]: unknown collector "gpu"`, `metrics.collectors[2]: collector "cpu" listed twice`}},
		{"relative proc", func(c *Config) { c.ProcPath = "proc" }, []string{"metrics.proc_path: must be an absolute path"}},
		{"query limits", func(c *Config) { c.Query.MaxSamples = 0; c.Query.Timeout = 0 }, []string{"metrics.query.max_samples", "metrics.query.timeout"}},
		{"remote write", func(c *Config) {
			c.RemoteWrite = []RemoteWriteConfig{
				{URL: "ftp://x"},
				{URL: "https://user:pw@example.net/api/v1/write"},
				{URL: "https://a.example/w", BasicAuthPassword: "env:PW"},
				{URL: "https://a.example/w2"},
				{URL: ""},
			}
		}, []string{
			`metrics.remote_write[0].url: must be an http:// or https:// URL`,
			"metrics.remote_write[1].url: must not contain credentials",
			"metrics.remote_write[2].basic_auth_user: is required",
			`metrics.remote_write[3].name: receiver name "a.example" used twice`,
			"metrics.remote_write[4].url: is required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			v := confkit.NewValidator("metrics")
			c.Validate(v)
			var got []string
			for _, e := range v.Errors() {
				got = append(got, e.Path+": "+e.Msg)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

// Every collector runs by default, netstat included (node_exporter's
// default, charted by Node Exporter Full).
func TestDefaultCollectors(t *testing.T) {
	def := DefaultConfig().Collectors
	if !slices.Contains(def, "cpu") || !slices.Contains(def, "hwmon") || !slices.Contains(def, "netstat") {
		t.Fatalf("default collectors %v", def)
	}
	if !slices.Equal(def, CollectorNames()) {
		t.Fatalf("default %v of known %v", def, CollectorNames())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := DefaultConfig()
	c.Interval = 0
	_, err := New(service.Env{StateDir: t.TempDir()}, c)
	if err == nil || !strings.Contains(err.Error(), "interval") {
		t.Fatalf("New with interval 0: %v", err)
	}
}

// TestServiceWithoutNodeCollectors stores only hostd's own metrics when
// the collector list is empty.
func TestServiceWithoutNodeCollectors(t *testing.T) {
	cfg := fixtureConfig()
	cfg.Collectors = []string{}
	rs := startService(t, t.TempDir(), cfg)
	out := gatherText(t, rs.reg)
	if strings.Contains(out, "node_") || !strings.Contains(out, "hostd_metrics_tsdb_head_series") {
		t.Fatalf("registry with collectors: []:\n%s", out)
	}
}

func TestDecodeConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		want    service.ByteSize
		wantErr string
	}{
		{"max_size: 512MiB\n", 512 << 20, ""},
		{"max_size: 2GB\n", 2 << 30, ""},
		{"max_size: 2GiB\n", 2 << 30, ""},
		{"max_size: 512MB\n", 512 << 20, ""},
		{"max_size: 1.5GiB\n", 3 << 29, ""},
		{"max_size: 1.5 GB\n", 3 << 29, ""},
		{"max_size: 40g\n", 40 << 30, ""},
		{"max_size: 1TB\n", 1 << 40, ""},
		{"max_size: 0\n", 0, ""},
		{"max_size: -1\n", 0, `invalid size "-1"`},
		{"max_size: 1GB512MB\n", 0, `invalid size "1GB512MB"`}, // no longer taken (docs/metrics.md)
		{"max_size: 0B\n", 0, ""},
		{"max_size: 1048576\n", 1 << 20, ""},
		{"max_size: lots\n", 0, `metrics.yaml:1:11: max_size: invalid size "lots"`},
		{"max_size: [1]\n", 0, "want a size"},
		{"interval: 15x\n", 0, "metrics.yaml:1:11: interval"},
		{"colectors: [cpu]\n", 0, "colectors"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c := DefaultConfig()
			_, errs := confkit.Decode("metrics.yaml", []byte(tt.yaml), &c)
			if tt.wantErr == "" {
				if len(errs) > 0 {
					t.Fatalf("decode: %v", errs)
				}
				if c.MaxSize != tt.want {
					t.Fatalf("max_size = %d, want %d", c.MaxSize, tt.want)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.Error(), tt.wantErr) {
				t.Fatalf("errors %v, want one containing %q", errs, tt.wantErr)
			}
		})
	}
}

// slowGatherer gathers reg; once delay is set, the next gather moves
// clock on by delay: one scrape that takes that long.
type slowGatherer struct {
	reg   *prometheus.Registry
	clock *servicetest.FakeClock
	delay atomic.Int64
}

func (g *slowGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.clock.Advance(time.Duration(g.delay.Swap(0)))
	return g.reg.Gather()
}

// TestScrapeLoopOnClock drives the scrape loop with a fake clock: a
// scrape at once, then every interval on the interval's grid
// (service.NextTick); after a scrape that overran two intervals, one
// scrape at once, then on in the grid's phase.
func TestScrapeLoopOnClock(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := servicetest.NewFakeClock(start)
	reg := prometheus.NewRegistry()
	gatherer := &slowGatherer{reg: reg, clock: clock}
	cfg := fixtureConfig()
	cfg.Interval = 15 * time.Second
	s, err := New(service.Env{Clock: clock, StateDir: t.TempDir(), Metrics: reg, Gatherer: gatherer}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v", err)
		}
	}()
	// next waits for the loop to sleep and returns when it will wake.
	next := func() time.Time {
		t.Helper()
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		at, _ := clock.NextTimer()
		return at
	}
	lastScrape := func() time.Time { return s.Status().Details.(StatusDetails).LastScrape }
	// g is the grid's first tick after the start.
	g := service.NextTick(start, 15*time.Second)
	if at := next(); !at.Equal(g) {
		t.Fatalf("second scrape at %s, want on the grid at %s", at, g)
	}
	if got := lastScrape(); !got.Equal(start) {
		t.Fatalf("first scrape at %s, want at once (%s)", got, start)
	}
	clock.Advance(g.Sub(start))
	if at := next(); !at.Equal(g.Add(15 * time.Second)) {
		t.Fatalf("third scrape at %s, want 15s after the second (%s)", at, g)
	}
	if got := lastScrape(); !got.Equal(g) {
		t.Fatalf("last scrape at %s", got)
	}
	// The third scrape takes 40s, ending at g+55s: the g+30s scrape runs
	// at once, the g+45s one is dropped, and the next is at g+60s.
	gatherer.delay.Store(int64(40 * time.Second))
	clock.Advance(15 * time.Second)
	if at := next(); !at.Equal(g.Add(60 * time.Second)) {
		t.Fatalf("scrape after the overrun at %s, want 60s after the second (%s)", at, g)
	}
	if got := lastScrape(); !got.Equal(g.Add(55 * time.Second)) {
		t.Fatalf("last scrape at %s, want at once after the overrun", got)
	}
}

// The node collectors keep this host's /proc and /sys files open while
// the service serves, and none once Serve has returned, even when the
// registry is gathered after (hostd's /metrics).
func TestServiceKeepsFilesWhileServing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Interval = time.Hour
	cfg.Collectors = []string{"meminfo", "netclass", "stat"}
	rs := startService(t, t.TempDir(), cfg)
	if n := rs.node.host.files.len(); n < 10 {
		t.Fatalf("%d files kept open while serving", n)
	}
	if err := rs.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v", err)
	}
	if n := rs.node.host.files.len(); n != 0 {
		t.Fatalf("%d files kept open after Serve returned", n)
	}
	if _, err := rs.reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := rs.node.host.files.len(); n != 0 {
		t.Fatalf("%d files kept open by a gather after Serve returned", n)
	}
}

// exceptRegistries lists the collectors of its registries but skip, as
// the daemon's gatherer does, and gathers them all.
type exceptRegistries struct {
	regs []*prometheus.Registry
	cs   map[*prometheus.Registry][]prometheus.Collector
}

func (e *exceptRegistries) add(r *prometheus.Registry, cs ...prometheus.Collector) {
	r.MustRegister(cs...)
	e.regs = append(e.regs, r)
	e.cs[r] = append(e.cs[r], cs...)
}

func (e *exceptRegistries) CollectorsExcept(skip prometheus.Registerer) []prometheus.Collector {
	var out []prometheus.Collector
	for _, r := range e.regs {
		if prometheus.Registerer(r) != skip {
			out = append(out, e.cs[r]...)
		}
	}
	return out
}

func (e *exceptRegistries) Gather() ([]*dto.MetricFamily, error) {
	gs := make(prometheus.Gatherers, len(e.regs))
	for i, r := range e.regs {
		gs[i] = r
	}
	return gs.Gather()
}

// With a gatherer that lists its registries' collectors (the daemon's),
// the service collects the other registries straight into its TSDB:
// every series a gather of them gives is stored, under the same metric
// names and with the metadata (help, type, unit) the gather gives.
func TestServiceCollectsOtherRegistries(t *testing.T) {
	other := prometheus.NewRegistry()
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hostd_test_things", Help: "Things."}, []string{"kind"})
	vec.WithLabelValues("a").Set(1)
	vec.WithLabelValues("b").Set(2)
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hostd_test_seconds", Help: "Durations.", Buckets: []float64{0.1, 1}})
	hist.Observe(0.5)
	unitDesc := prometheus.V2.NewDesc("hostd_test_ratio_percent", "A ratio.", prometheus.UnconstrainedLabels(nil), nil, prometheus.WithUnit("percent"))
	withUnit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hostd_test_up", Help: "Up."}, func() float64 { return 1 })
	ex := &exceptRegistries{cs: map[*prometheus.Registry][]prometheus.Collector{}}
	ex.add(other, vec, hist, withUnit, sendsConst{unitDesc})

	cfg := fixtureConfig()
	metricsReg := prometheus.NewRegistry()
	ex.regs = append(ex.regs, metricsReg) // the service's own, left out
	s := startServiceWith(t, service.Env{StateDir: t.TempDir(), Metrics: metricsReg, Gatherer: ex}, cfg)
	srv := httptest.NewServer(s.PublicHTTP())
	defer srv.Close()
	mfs, err := other.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		want := len(mf.GetMetric())
		query := mf.GetName()
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			query, want = mf.GetName()+"_bucket", 3 // 0.1, 1, +Inf
		}
		_, r := promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {"count(" + query + ")"}})
		if !strings.Contains(string(r.Data), fmt.Sprintf(`"%d"]`, want)) {
			t.Errorf("count(%s) = %s, want %d", query, r.Data, want)
		}
		_, r = promGet(t, srv.URL, "/api/v1/metadata", url.Values{"metric": {mf.GetName()}})
		wantMeta := fmt.Sprintf(`"type":%q,"help":%q,"unit":%q`, metricTypeName(mf.GetType()), mf.GetHelp(), mf.GetUnit())
		if !strings.Contains(string(r.Data), wantMeta) {
			t.Errorf("metadata of %s = %s, want %s", mf.GetName(), r.Data, wantMeta)
		}
	}
	_, r := promGet(t, srv.URL, "/api/v1/query", url.Values{"query": {"node_load1"}})
	if !strings.Contains(string(r.Data), `"0.5"]`) {
		t.Errorf("node_load1 = %s", r.Data)
	}
}

// sendsConst sends a constant metric of its descriptor.
type sendsConst struct{ d *prometheus.Desc }

func (c sendsConst) Describe(ch chan<- *prometheus.Desc) { ch <- c.d }

func (c sendsConst) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.d, prometheus.GaugeValue, 42)
}
