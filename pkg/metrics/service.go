package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"golang.org/x/sync/errgroup"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
)

// Service is the metrics service: node collectors, scrape loop, TSDB,
// remote write, query API and dashboard.
type Service struct {
	env        service.Env
	cfg        Config
	logger     *slog.Logger
	clock      service.Clock
	node       *NodeCollector
	api        *API
	apiHandler http.Handler
	public     http.Handler
	notifier   *Notifier
	started    time.Time
	// own are the service's own collectors (everything it registers in
	// env.Metrics but the node collectors): the scraper appends them
	// directly with the node collectors (scrapeSources).
	own []prometheus.Collector

	mu       sync.RWMutex
	store    *Storage
	scraper  *Scraper
	writers  []*RemoteWriter
	rules    *rules.Manager // nil while not serving
	last     ScrapeResult
	lastAt   time.Time
	lastErr  error
	repairs  int
	degraded bool

	scrapeDuration prometheus.Gauge
	scrapeSamples  prometheus.Gauge
	scrapeFailures prometheus.Counter
	walRepairs     prometheus.Counter
}

var (
	_ service.Service    = (*Service)(nil)
	_ service.PublicHTTP = (*Service)(nil)
	_ service.LocalAPI   = (*Service)(nil)
)

// New builds the metrics service and registers the node collectors and
// the service's own metrics in env.Metrics. Nothing is opened until Serve.
func New(env service.Env, cfg Config) (*Service, error) {
	env = env.WithDefaults()
	v := confkit.NewValidator("metrics")
	cfg.Validate(v)
	if errs := v.Errors(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Path + ": " + e.Msg
		}
		return nil, service.Permanent(fmt.Errorf("invalid metrics config: %s", strings.Join(msgs, "; ")))
	}
	node, err := NewNodeCollector(HostOptions{
		ProcPath:             cfg.ProcPath,
		SysPath:              cfg.SysPath,
		RootPath:             cfg.RootPath,
		MountTimeout:         cfg.MountTimeout,
		TextfileDir:          cfg.TextfileDirectory,
		FSMountPointsExclude: compileOrNil(cfg.FilesystemMountPointsExclude),
		FSTypesExclude:       compileOrNil(cfg.FilesystemFSTypesExclude),
		Now:                  env.Clock.Now,
	}, cfg.Collectors, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("create node collectors: %w", err)
	}
	s := &Service{
		env:    env,
		cfg:    cfg,
		logger: env.Logger,
		clock:  env.Clock,
		node:   node,
		scrapeDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hostd_metrics_scrape_duration_seconds", Help: "Time the last scrape into the TSDB took.",
		}),
		scrapeSamples: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hostd_metrics_scrape_samples", Help: "Samples appended by the last scrape.",
		}),
		scrapeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_metrics_scrape_failures_total", Help: "Scrapes that could not be stored.",
		}),
		walRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_metrics_wal_repairs_total", Help: "Corrupted write-ahead logs repaired when the TSDB opened.",
		}),
	}
	headSeries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hostd_metrics_tsdb_head_series", Help: "Series in the TSDB's in-memory head block.",
	}, func() float64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.store == nil {
			return 0
		}
		return float64(s.store.DB.Head().NumSeries())
	})
	s.notifier = NewNotifier(cfg.Alerting, cfg.externalLabels(), env.Logger.With("component", "notifier"))
	s.notifier.Clock = env.Clock
	s.started = env.Clock.Now()
	if err := env.Metrics.Register(node); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.own = []prometheus.Collector{s.notifier, s.scrapeDuration, s.scrapeSamples, s.scrapeFailures, s.walRepairs, headSeries, remoteWriteCollector{s}}
	for _, c := range s.own {
		if err := env.Metrics.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	s.api = NewAPI(liveQueryable{s}, s.metadata, APIOptions{
		MaxSamples:    cfg.Query.MaxSamples,
		Timeout:       cfg.Query.Timeout,
		MaxPoints:     cfg.Query.MaxPoints,
		LookbackDelta: cfg.Query.LookbackDelta,
		Now:           env.Clock.Now,
		Sources:       s.apiSources(),
	}, env.Logger)
	if err := s.checkRules(); err != nil {
		return nil, service.Permanent(err)
	}
	s.apiHandler = s.api.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", s.apiHandler)
	mux.Handle("/-/", s.apiHandler)
	mux.Handle("/", dashboardHandler())
	s.public = mux
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "metrics" }

// PublicHTTP serves the query API under /api/v1/ and the dashboard at /.
func (s *Service) PublicHTTP() http.Handler { return s.public }

// Serve opens the TSDB, runs the scrape loop and the remote writers until
// ctx ends, then closes the TSDB.
func (s *Service) Serve(ctx context.Context) error {
	dir := filepath.Join(s.env.StateDir, "tsdb")
	store, err := OpenStorage(StorageOptions{Dir: dir, Retention: s.cfg.Retention, MaxBytes: int64(s.cfg.MaxSize)}, s.logger)
	if err != nil {
		return err
	}
	if store.WALRepairs > 0 {
		s.logger.Warn("the TSDB write-ahead log was corrupted and has been repaired; samples after the damage were lost",
			"dir", dir, "repairs", store.WALRepairs)
		s.walRepairs.Add(float64(store.WALRepairs))
	}
	writers, err := s.remoteWriters(ctx)
	if err != nil {
		_ = store.Close()
		return err
	}
	// The node collectors keep their files open while the service
	// serves (openFiles); a service stopped or replaced holds none.
	s.node.keepFilesOpen()
	defer s.node.closeFiles()
	gather, direct := s.scrapeSources()
	scraper := &Scraper{Gatherer: gather, Direct: direct, Storage: store.DB, Clock: s.clock, Targets: s.targets()}
	if len(writers) > 0 {
		scraper.OnSamples = func(smp []Sample) {
			for _, w := range writers {
				w.Enqueue(smp)
			}
		}
	}
	s.mu.Lock()
	s.store, s.scraper, s.writers, s.repairs = store, scraper, writers, store.WALRepairs
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.store, s.scraper = nil, nil
		s.mu.Unlock()
		if err := store.Close(); err != nil {
			s.logger.Warn("close tsdb", "err", err)
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	mgr, stopRules, err := s.startRules(gctx, store)
	if err != nil {
		return err
	}
	defer stopRules()
	s.mu.Lock()
	s.rules = mgr
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.rules = nil
		s.mu.Unlock()
	}()
	g.Go(func() error { return s.notifier.Run(gctx) })
	for _, w := range writers {
		g.Go(func() error { return w.Run(gctx) })
	}
	g.Go(func() error { return s.scrapeLoop(gctx, scraper) })
	err = g.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ExceptCollectors lists the collectors of several registries but one:
// the daemon's gatherer, whose registries hold hostd's own metrics and
// every service's.
type ExceptCollectors interface {
	// CollectorsExcept returns the collectors registered in every
	// registry but skip.
	CollectorsExcept(skip prometheus.Registerer) []prometheus.Collector
}

// scrapeSources returns what the scraper gathers and the collectors it
// appends directly. When env.Gatherer lists its registries' collectors
// (an ExceptCollectors), everything is appended as it is collected, in
// the scraper's goroutine where a collector allows (collectors): the node
// collectors (most of a host's series), the service's own, and every
// other registry's, this service's left out. Any other gatherer is
// gathered as it is, node collectors and all.
func (s *Service) scrapeSources() (prometheus.Gatherer, prometheus.Collector) {
	g, ok := s.env.Gatherer.(ExceptCollectors)
	if !ok {
		return s.env.Gatherer, nil
	}
	own := append([]prometheus.Collector{s.node}, s.own...)
	return nil, collectorsFunc(func() collectors {
		return append(own[:len(own):len(own)], g.CollectorsExcept(s.env.Metrics)...)
	})
}

// collectorsFunc collects the collectors its function returns at each
// collection (the services' registries change as they are replaced).
type collectorsFunc func() collectors

var (
	_ DirectCollector = collectorsFunc(nil)
	_ collectorList   = collectorsFunc(nil)
)

func (f collectorsFunc) Describe(chan<- *prometheus.Desc) {}

func (f collectorsFunc) Collect(ch chan<- prometheus.Metric) { f().Collect(ch) }

func (f collectorsFunc) CollectTo(emit func(prometheus.Metric)) { f().CollectTo(emit) }

func (f collectorsFunc) collectorList() []prometheus.Collector { return f() }

// collectors collects each of its collectors in turn.
type collectors []prometheus.Collector

var (
	_ DirectCollector = collectors(nil)
	_ collectorList   = collectors(nil)
)

func (cs collectors) Describe(chan<- *prometheus.Desc) {}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// CollectTo implements DirectCollector: each collector hands its metrics
// over in the caller's goroutine (collectEach).
func (cs collectors) CollectTo(emit func(prometheus.Metric)) {
	_ = collectEach(cs, emit, &chanCollector{})
}

func (cs collectors) collectorList() []prometheus.Collector { return cs }

// scrapeLoop scrapes now and then every interval on the service's clock
// until ctx ends, keeping a ticker's cadence: a scrape that overran one
// or more intervals is followed at once by the next, in the old phase.
// After the first, scrapes fall on the interval's grid
// (service.NextTick), where the daemon's other periodic work ticks too,
// so they wake the process together.
func (s *Service) scrapeLoop(ctx context.Context, sc *Scraper) error {
	interval := s.cfg.Interval
	next := service.NextTick(s.clock.Now(), interval).Add(-interval)
	for {
		s.scrapeOnce(ctx, sc)
		next = next.Add(interval)
		now := s.clock.Now()
		switch late := now.Sub(next); {
		case late > 0:
			next = next.Add(late / interval * interval) // the missed ticks are dropped
		case late < -interval:
			// The wall clock was set back: the grid from now on.
			next = service.NextTick(now, interval)
		}
		if service.Sleep(ctx, s.clock, next.Sub(now)) != nil {
			return nil
		}
	}
}

// scrapeOnce appends one scrape and turns failures to store it (a full
// disk) into a degraded state, and success back into ready.
func (s *Service) scrapeOnce(ctx context.Context, sc *Scraper) {
	res, err := sc.Scrape(ctx)
	s.mu.Lock()
	s.last, s.lastAt, s.lastErr = res, s.clock.Now(), err
	wasDegraded := s.degraded
	s.degraded = err != nil
	s.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.scrapeFailures.Inc()
		if !wasDegraded {
			s.logger.Error("cannot store metrics; history is not being recorded", "err", err)
		}
		s.env.Health.Degraded(fmt.Errorf("store metrics: %w", err))
		return
	}
	s.scrapeDuration.Set(res.Duration.Seconds())
	s.scrapeSamples.Set(float64(res.Samples))
	if wasDegraded {
		s.logger.Info("storing metrics again")
	}
	s.env.Health.Ready()
}

func (s *Service) remoteWriters(ctx context.Context) ([]*RemoteWriter, error) {
	var out []*RemoteWriter
	for _, rc := range s.cfg.RemoteWrite {
		rc = rc.withDefaults()
		var auth func(*http.Request)
		switch {
		case rc.BasicAuthPassword != "":
			pw, err := s.env.Secrets.Resolve(ctx, rc.BasicAuthPassword)
			if err != nil {
				return nil, fmt.Errorf("remote_write %s: resolve basic_auth_password %s: %w", rc.Name, rc.BasicAuthPassword, err)
			}
			user := rc.BasicAuthUser
			auth = func(r *http.Request) { r.SetBasicAuth(user, string(pw)) }
		case rc.BearerToken != "":
			tok, err := s.env.Secrets.Resolve(ctx, rc.BearerToken)
			if err != nil {
				return nil, fmt.Errorf("remote_write %s: resolve bearer_token %s: %w", rc.Name, rc.BearerToken, err)
			}
			auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok))) }
		}
		w := NewRemoteWriter(rc, auth, s.logger)
		w.ExternalLabels = s.cfg.externalLabels()
		w.Clock = s.clock
		out = append(out, w)
	}
	return out, nil
}

func (s *Service) metadata() map[string]Metadata {
	s.mu.RLock()
	sc := s.scraper
	s.mu.RUnlock()
	if sc == nil {
		return nil
	}
	return sc.Metadata()
}

// Scrape runs one scrape now (for tests and the CLI); it fails when the
// service is not serving.
func (s *Service) Scrape(ctx context.Context) (ScrapeResult, error) {
	s.mu.RLock()
	sc := s.scraper
	s.mu.RUnlock()
	if sc == nil {
		return ScrapeResult{}, errNotServing
	}
	s.scrapeOnce(ctx, sc)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, s.lastErr
}

var errNotServing = errors.New("metrics storage is not open")

// liveQueryable queries whatever TSDB the service has open.
type liveQueryable struct{ s *Service }

func (l liveQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	l.s.mu.RLock()
	defer l.s.mu.RUnlock()
	if l.s.store == nil {
		return nil, errNotServing
	}
	return l.s.store.DB.Querier(mint, maxt)
}

// StatusDetails is the metrics service's entry in `hostd status`.
type StatusDetails struct {
	Interval          string              `json:"interval"`
	Retention         string              `json:"retention"`
	HeadSeries        uint64              `json:"head_series"`
	Blocks            int                 `json:"blocks"`
	WALRepairs        int                 `json:"wal_repairs"`
	LastScrape        time.Time           `json:"last_scrape,omitzero"`
	LastSamples       int                 `json:"last_scrape_samples"`
	LastStale         int                 `json:"last_scrape_stale"`
	LastDurationMS    float64             `json:"last_scrape_duration_ms"`
	LastError         string              `json:"last_error,omitempty"`
	Collectors        []string            `json:"collectors"`
	FailingCollectors map[string]string   `json:"failing_collectors,omitempty"`
	RemoteWrite       []RemoteWriteStatus `json:"remote_write,omitempty"`
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	s.mu.RLock()
	d := StatusDetails{
		Interval:          fmtDuration(s.cfg.Interval),
		Retention:         fmtDuration(s.cfg.Retention),
		WALRepairs:        s.repairs,
		LastScrape:        s.lastAt,
		LastSamples:       s.last.Samples,
		LastStale:         s.last.Stale,
		LastDurationMS:    float64(s.last.Duration.Microseconds()) / 1000,
		Collectors:        s.node.Names(),
		FailingCollectors: s.node.Failing(),
	}
	if s.lastErr != nil {
		d.LastError = s.lastErr.Error()
	}
	if s.store != nil {
		d.HeadSeries = s.store.DB.Head().NumSeries()
		d.Blocks = len(s.store.DB.Blocks())
	}
	for _, w := range s.writers {
		d.RemoteWrite = append(d.RemoteWrite, w.Status())
	}
	s.mu.RUnlock()
	sum := fmt.Sprintf("%d series, %d blocks, every %s, keep %s", d.HeadSeries, d.Blocks, d.Interval, d.Retention)
	if !d.LastScrape.IsZero() {
		sum += fmt.Sprintf(", last scrape %d samples", d.LastSamples)
	}
	if d.WALRepairs > 0 {
		sum += fmt.Sprintf(", WAL repaired %dx", d.WALRepairs)
	}
	if n := len(d.FailingCollectors); n > 0 {
		sum += fmt.Sprintf(", %d collectors failing", n)
	}
	for _, rw := range d.RemoteWrite {
		sum += fmt.Sprintf(", remote_write %s: %d sent %d queued", rw.Name, rw.Sent, rw.Queued)
	}
	return service.Status{Summary: sum, Details: d}
}

// fmtDuration prints whole days as "15d" and everything else as Go does.
func fmtDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

var (
	rwSentDesc = prometheus.NewDesc("hostd_metrics_remote_write_samples_sent_total",
		"Samples a remote_write receiver accepted.", []string{"remote"}, nil)
	rwDroppedDesc = prometheus.NewDesc("hostd_metrics_remote_write_samples_dropped_total",
		"Samples dropped for a remote_write receiver: queue full or rejected.", []string{"remote"}, nil)
	rwFailedDesc = prometheus.NewDesc("hostd_metrics_remote_write_failed_pushes_total",
		"Pushes to a remote_write receiver that failed and were retried.", []string{"remote"}, nil)
	rwQueuedDesc = prometheus.NewDesc("hostd_metrics_remote_write_queue_samples",
		"Samples waiting for a remote_write receiver.", []string{"remote"}, nil)
)

// remoteWriteCollector exports the remote writers' counters.
type remoteWriteCollector struct{ s *Service }

func (c remoteWriteCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rwSentDesc
	ch <- rwDroppedDesc
	ch <- rwFailedDesc
	ch <- rwQueuedDesc
}

func (c remoteWriteCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.RLock()
	writers := c.s.writers
	c.s.mu.RUnlock()
	for _, w := range writers {
		st := w.Status()
		ch <- prometheus.MustNewConstMetric(rwSentDesc, prometheus.CounterValue, float64(st.Sent), st.Name)
		ch <- prometheus.MustNewConstMetric(rwDroppedDesc, prometheus.CounterValue, float64(st.Dropped), st.Name)
		ch <- prometheus.MustNewConstMetric(rwFailedDesc, prometheus.CounterValue, float64(st.Failed), st.Name)
		ch <- prometheus.MustNewConstMetric(rwQueuedDesc, prometheus.GaugeValue, float64(st.Queued), st.Name)
	}
}
