package metrics

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb/index"
	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/service"
)

// apiSources answers the status, targets, rules and alerts endpoints from
// the service.
func (s *Service) apiSources() APISources {
	return APISources{
		Runtime:    s.runtimeInfo,
		Config:     s.prometheusConfig,
		Flags:      s.prometheusFlags,
		TSDB:       s.tsdbStatus,
		Targets:    s.apiTargets,
		RuleGroups: s.RuleGroups,
		Ready: func() bool {
			s.mu.RLock()
			defer s.mu.RUnlock()
			return s.store != nil
		},
	}
}

// RuleGroups returns the loaded rule groups; none while not serving.
func (s *Service) RuleGroups() []*rules.Group {
	s.mu.RLock()
	mgr := s.rules
	s.mu.RUnlock()
	if mgr == nil {
		return nil
	}
	return mgr.RuleGroups()
}

func (s *Service) runtimeInfo() RuntimeInfo {
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	s.mu.RLock()
	repairs := s.repairs
	s.mu.RUnlock()
	gogc := os.Getenv("GOGC")
	return RuntimeInfo{
		StartTime:           s.started.UTC(),
		CWD:                 cwd,
		Hostname:            host,
		ServerTime:          s.clock.Now().UTC(),
		ReloadConfigSuccess: true, // a config that fails to load never replaces the running one
		LastConfigTime:      s.started.UTC(),
		CorruptionCount:     int64(repairs),
		GoroutineCount:      runtime.NumGoroutine(),
		GOMAXPROCS:          runtime.GOMAXPROCS(0),
		GOMEMLIMIT:          debug.SetMemoryLimit(-1),
		GOGC:                gogc,
		GODEBUG:             os.Getenv("GODEBUG"),
		StorageRetention:    s.storageRetention(),
	}
}

// storageRetention reads as Prometheus': "15d", "15d or 2GiB".
func (s *Service) storageRetention() string {
	r := fmtDuration(s.cfg.Retention)
	if s.cfg.MaxSize > 0 {
		r += " or " + s.cfg.MaxSize.String()
	}
	return r
}

// prometheusConfig is the service's configuration written as the
// prometheus.yml that would do the same work; secrets are left out.
func (s *Service) prometheusConfig() string {
	type staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels,omitempty"`
	}
	type scrapeConfig struct {
		JobName        string         `yaml:"job_name"`
		ScrapeInterval string         `yaml:"scrape_interval"`
		MetricsPath    string         `yaml:"metrics_path"`
		StaticConfigs  []staticConfig `yaml:"static_configs"`
	}
	type amConfig struct {
		StaticConfigs []staticConfig `yaml:"static_configs"`
		Scheme        string         `yaml:"scheme"`
		Timeout       string         `yaml:"timeout"`
		APIVersion    string         `yaml:"api_version"`
	}
	type rwConfig struct {
		URL           string `yaml:"url"`
		Name          string `yaml:"name"`
		RemoteTimeout string `yaml:"remote_timeout"`
	}
	cfg := struct {
		Global struct {
			ScrapeInterval     string            `yaml:"scrape_interval"`
			ScrapeTimeout      string            `yaml:"scrape_timeout"`
			EvaluationInterval string            `yaml:"evaluation_interval"`
			ExternalLabels     map[string]string `yaml:"external_labels,omitempty"`
		} `yaml:"global"`
		Alerting struct {
			Alertmanagers []amConfig `yaml:"alertmanagers,omitempty"`
		} `yaml:"alerting,omitempty"`
		RuleFiles     []string       `yaml:"rule_files,omitempty"`
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
		RemoteWrite   []rwConfig     `yaml:"remote_write,omitempty"`
	}{}
	cfg.Global.ScrapeInterval = fmtDuration(s.cfg.Interval)
	cfg.Global.ScrapeTimeout = fmtDuration(s.cfg.Interval)
	cfg.Global.EvaluationInterval = fmtDuration(s.cfg.Rules.EvaluationInterval)
	cfg.Global.ExternalLabels = s.cfg.ExternalLabels
	for _, am := range s.cfg.Alerting.Alertmanagers {
		scheme, host, _ := strings.Cut(am.URL, "://")
		to := am.Timeout
		if to <= 0 {
			to = 10 * time.Second
		}
		cfg.Alerting.Alertmanagers = append(cfg.Alerting.Alertmanagers, amConfig{
			StaticConfigs: []staticConfig{{Targets: []string{strings.TrimSuffix(host, "/")}}},
			Scheme:        scheme, Timeout: fmtDuration(to), APIVersion: "v2",
		})
	}
	cfg.RuleFiles, _ = ruleFiles(s.cfg.Rules)
	for _, t := range s.targets() {
		cfg.ScrapeConfigs = append(cfg.ScrapeConfigs, scrapeConfig{
			JobName: t.Job, ScrapeInterval: fmtDuration(s.cfg.Interval), MetricsPath: "/metrics",
			StaticConfigs: []staticConfig{{Targets: []string{t.Instance}}},
		})
	}
	for _, rw := range s.cfg.RemoteWrite {
		rw = rw.withDefaults()
		cfg.RemoteWrite = append(cfg.RemoteWrite, rwConfig{URL: redactURL(rw.URL), Name: rw.Name, RemoteTimeout: fmtDuration(rw.Timeout)})
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Sprintf("# cannot encode the configuration: %v\n", err)
	}
	return string(b)
}

// prometheusSize writes a size as Prometheus' flags show it: "0B" for
// none, otherwise as the config takes it ("512MiB").
func prometheusSize(b service.ByteSize) string {
	if b == 0 {
		return "0B"
	}
	return b.String()
}

// prometheusFlags are the Prometheus flags hostd's options stand for.
func (s *Service) prometheusFlags() map[string]string {
	return map[string]string{
		"storage.tsdb.path":                        s.env.StateDir + "/tsdb",
		"storage.tsdb.retention.time":              fmtDuration(s.cfg.Retention),
		"storage.tsdb.retention.size":              prometheusSize(s.cfg.MaxSize),
		"query.lookback-delta":                     fmtDuration(s.cfg.Query.LookbackDelta),
		"query.max-samples":                        fmt.Sprint(s.cfg.Query.MaxSamples),
		"query.timeout":                            fmtDuration(s.cfg.Query.Timeout),
		"rules.alert.resend-delay":                 fmtDuration(s.cfg.Alerting.ResendDelay),
		"rules.alert.for-outage-tolerance":         "1h",
		"rules.alert.for-grace-period":             "10m",
		"web.external-url":                         s.cfg.Alerting.ExternalURL,
		"alertmanager.notification-queue-capacity": fmt.Sprint(s.cfg.Alerting.QueueSize),
	}
}

func (s *Service) tsdbStatus(limit int) (TSDBStatus, error) {
	s.mu.RLock()
	store := s.store
	s.mu.RUnlock()
	if store == nil {
		return TSDBStatus{}, errNotServing
	}
	st := store.DB.Head().Stats(labels.MetricName, limit)
	conv := func(in []index.Stat) []TSDBStat {
		out := make([]TSDBStat, 0, len(in))
		for _, e := range in {
			out = append(out, TSDBStat{Name: e.Name, Value: e.Count})
		}
		return out
	}
	ps := st.IndexPostingStats
	return TSDBStatus{
		HeadStats: HeadStats{
			NumSeries: st.NumSeries, NumLabelPairs: ps.NumLabelPairs, ChunkCount: store.headChunks(),
			MinTime: st.MinTime, MaxTime: st.MaxTime,
		},
		SeriesCountByMetricName:     conv(ps.CardinalityMetricsStats),
		LabelValueCountByLabelName:  conv(ps.CardinalityLabelStats),
		MemoryInBytesByLabelName:    conv(ps.LabelValueStats),
		SeriesCountByLabelValuePair: conv(ps.LabelValuePairsStats),
	}, nil
}

// apiTargets describes the scrape's jobs as Prometheus' targets.
func (s *Service) apiTargets() []Target {
	s.mu.RLock()
	last, lastAt, lastErr := s.last, s.lastAt, s.lastErr
	s.mu.RUnlock()
	health, errText := "unknown", ""
	switch {
	case lastErr != nil:
		health, errText = "down", lastErr.Error()
	case !lastAt.IsZero():
		health = "up"
	}
	var out []Target
	for _, t := range s.targets() {
		out = append(out, Target{
			DiscoveredLabels: labels.FromStrings("__address__", t.Instance, "__metrics_path__", "/metrics",
				"__scheme__", "http", "__scrape_interval__", fmtDuration(s.cfg.Interval),
				"__scrape_timeout__", fmtDuration(s.cfg.Interval), "job", t.Job),
			Labels:             labels.FromStrings("instance", t.Instance, "job", t.Job),
			ScrapePool:         t.Job,
			ScrapeURL:          "http://" + t.Instance + "/metrics",
			GlobalURL:          "http://" + t.Instance + "/metrics",
			LastError:          errText,
			LastScrape:         lastAt,
			LastScrapeDuration: last.Duration.Seconds(),
			Health:             health,
			ScrapeInterval:     fmtDuration(s.cfg.Interval),
			ScrapeTimeout:      fmtDuration(s.cfg.Interval),
		})
	}
	return out
}
