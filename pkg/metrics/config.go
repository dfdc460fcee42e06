package metrics

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
)

// Config is the `metrics` section.
type Config struct {
	// Enable turns the metrics service on. Default: true.
	Enable bool `yaml:"enable"`
	// Interval is how often everything hostd publishes (node collectors
	// and every service's metrics) is appended to the TSDB. Default: 15s.
	Interval time.Duration `yaml:"interval"`
	// Retention is how long samples are kept. Default: 15d.
	Retention time.Duration `yaml:"retention"`
	// MaxSize caps the TSDB on disk ("512MiB", "2GiB"); the oldest blocks
	// go first. 0 means no size limit. Default: 0.
	MaxSize service.ByteSize `yaml:"max_size"`
	// Collectors are the node collectors to run, of arp, conntrack, cpu,
	// diskstats, entropy, filefd, filesystem, hwmon, loadavg, meminfo,
	// netclass, netdev, netstat, os, pressure, selinux, sockstat, softnet,
	// stat, textfile, thermal_zone, time, timex, udp_queues, uname and
	// vmstat. Default: all of them.
	Collectors []string `yaml:"collectors"`
	// ProcPath is where procfs is mounted. Default: /proc.
	ProcPath string `yaml:"proc_path"`
	// SysPath is where sysfs is mounted. Default: /sys.
	SysPath string `yaml:"sys_path"`
	// RootPath is the host's root as hostd sees it; mount points are
	// reported relative to it. Default: /.
	RootPath string `yaml:"root_path"`
	// MountTimeout bounds one filesystem's statfs; a mount that does not
	// answer (a stuck NFS server) is reported with
	// node_filesystem_device_error 1. Default: 5s.
	MountTimeout time.Duration `yaml:"mount_timeout"`
	// FilesystemMountPointsExclude is a regular expression of mount points
	// the filesystem collector leaves out (node_exporter's
	// --collector.filesystem.mount-points-exclude). Default: Debian
	// node_exporter's, ^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/).
	FilesystemMountPointsExclude string `yaml:"filesystem_mount_points_exclude"`
	// FilesystemFSTypesExclude is a regular expression of filesystem types
	// the filesystem collector leaves out (--collector.filesystem.
	// fs-types-exclude). Default: node_exporter's pseudo filesystems,
	// overlay and squashfs.
	FilesystemFSTypesExclude string `yaml:"filesystem_fs_types_exclude"`
	// TextfileDirectory is where the textfile collector reads *.prom
	// files (node_exporter's --collector.textfile.directory; Debian's
	// node_exporter uses /var/lib/prometheus/node-exporter). Empty reads
	// none. Default: empty.
	TextfileDirectory string `yaml:"textfile_directory"`
	// Instance is the instance label of every stored series and of up.
	// Default: the host name.
	Instance string `yaml:"instance"`
	// ExternalLabels are added to every series sent by remote_write and
	// to every alert sent to Alertmanager or a webhook, unless the series
	// or alert has a label of that name, as Prometheus'
	// global.external_labels. They are not stored locally. Default: none.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// Query holds the query API's limits.
	Query QueryConfig `yaml:"query"`
	// Rules are recording and alerting rules in Prometheus' rule file
	// format, evaluated in-process over the stored metrics.
	Rules RulesConfig `yaml:"rules"`
	// Alerting says where firing and resolved alerts are sent.
	Alerting AlertingConfig `yaml:"alerting"`
	// RemoteWrite lists Prometheus-compatible receivers (Prometheus,
	// Mimir, VictoriaMetrics) every scrape is pushed to with the Remote
	// Write 1.0 protocol. Default: none.
	RemoteWrite []RemoteWriteConfig `yaml:"remote_write"`
}

// QueryConfig holds the query API's limits.
type QueryConfig struct {
	// MaxSamples is the most samples one query may load; a larger query
	// is refused with an execution error. Default: 5000000.
	MaxSamples int `yaml:"max_samples"`
	// Timeout bounds one query's evaluation. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxPoints is the most points per series of a range query.
	// Default: 11000.
	MaxPoints int `yaml:"max_points"`
	// LookbackDelta is how far back an instant selector looks for a
	// sample. Default: 5m.
	LookbackDelta time.Duration `yaml:"lookback_delta"`
}

// RulesConfig selects the rule files.
type RulesConfig struct {
	// Default evaluates hostd's built-in rules (backup failed or too old,
	// filesystem full within 24h, service degraded, proxy down, DNS
	// upstreams failing, clock not synchronised, memory pressure).
	// Default: true.
	Default bool `yaml:"default"`
	// Files are more rule files, as Prometheus' rule_files: paths or
	// globs of YAML files `promtool check rules` accepts. Default: none.
	Files []string `yaml:"files"`
	// EvaluationInterval is how often every rule group is evaluated,
	// unless the group sets its own interval. Default: 15s.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
}

// AlertingConfig says where alerts go.
type AlertingConfig struct {
	// Alertmanagers receive alerts through the Alertmanager v2 API
	// (POST <url>/api/v2/alerts). Default: none.
	Alertmanagers []NotifyConfig `yaml:"alertmanagers"`
	// Webhooks receive the same JSON array of alerts by POST to their URL.
	// Default: none.
	Webhooks []NotifyConfig `yaml:"webhooks"`
	// ResendDelay is how often a firing alert is sent again, as
	// Prometheus' --rules.alert.resend-delay. Default: 1m.
	ResendDelay time.Duration `yaml:"resend_delay"`
	// ExternalURL is the URL alerts link back to (generatorURL) and
	// templates see as $externalURL. Default: none.
	ExternalURL string `yaml:"external_url"`
	// QueueSize is the most alerts waiting to be sent; beyond it the
	// oldest are dropped and counted. Default: 10000.
	QueueSize int `yaml:"queue_size"`
}

// NotifyConfig is one Alertmanager or webhook.
type NotifyConfig struct {
	// URL is the Alertmanager's base URL (http://127.0.0.1:9093) or the
	// webhook's full URL. Required.
	URL string `yaml:"url"`
	// Timeout bounds one POST, all of it: connect, sending the alerts and
	// reading the answer. A receiver that does not answer in time counts
	// as a failed notification; the alerts are sent again after
	// resend_delay while they fire. Default: 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// RemoteWriteConfig is one remote_write receiver.
type RemoteWriteConfig struct {
	// URL is the receiver's write endpoint, e.g.
	// https://prom.example.net/api/v1/write. Required.
	URL string `yaml:"url"`
	// Name labels this receiver in logs, status and metrics. Default: the
	// URL's host.
	Name string `yaml:"name"`
	// BasicAuthUser and BasicAuthPassword authenticate with HTTP basic
	// auth; the password is a secret reference. Default: none.
	BasicAuthUser     string      `yaml:"basic_auth_user"`
	BasicAuthPassword secrets.Ref `yaml:"basic_auth_password"`
	// BearerToken is a secret reference to a bearer token. Default: none.
	BearerToken secrets.Ref `yaml:"bearer_token"`
	// Timeout bounds one push. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
	// QueueSize is the most samples held while the receiver is
	// unreachable; beyond it the oldest are dropped (and counted).
	// Default: 100000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most samples in one push. Default: 2000.
	BatchSize int `yaml:"batch_size"`
	// MinBackoff and MaxBackoff bound the wait between retries of a
	// failed push (doubling per failure). Defaults: 100ms, 30s.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// DefaultConfig returns the defaults: enabled, 15s interval, 15d retention.
func DefaultConfig() Config {
	return Config{
		Enable:                       true,
		Interval:                     15 * time.Second,
		Retention:                    15 * 24 * time.Hour,
		Collectors:                   DefaultCollectorNames(),
		ProcPath:                     "/proc",
		SysPath:                      "/sys",
		RootPath:                     "/",
		MountTimeout:                 5 * time.Second,
		FilesystemMountPointsExclude: DefaultFSMountPointsExclude,
		FilesystemFSTypesExclude:     DefaultFSTypesExclude,
		Rules:                        RulesConfig{Default: true, EvaluationInterval: 15 * time.Second},
		Alerting:                     AlertingConfig{ResendDelay: time.Minute, QueueSize: 10000},
		Query: QueryConfig{
			MaxSamples:    5_000_000,
			Timeout:       30 * time.Second,
			MaxPoints:     11000,
			LookbackDelta: 5 * time.Minute,
		},
	}
}

// remoteWriteDefaults fills unset remote_write fields.
func (r RemoteWriteConfig) withDefaults() RemoteWriteConfig {
	if r.Name == "" {
		if u, err := url.Parse(r.URL); err == nil {
			r.Name = u.Host
		}
	}
	if r.Timeout == 0 {
		r.Timeout = 30 * time.Second
	}
	if r.QueueSize == 0 {
		r.QueueSize = 100000
	}
	if r.BatchSize == 0 {
		r.BatchSize = 2000
	}
	if r.MinBackoff == 0 {
		r.MinBackoff = 100 * time.Millisecond
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = 30 * time.Second
	}
	return r
}

// Validate reports every problem of the section.
func (c *Config) Validate(v *confkit.Validator) {
	if c.Interval < time.Second {
		v.Errorf("interval", "must be at least 1s, not %s", c.Interval)
	}
	if c.Retention < 2*time.Hour {
		v.Errorf("retention", "must be at least 2h (one TSDB block), not %s", c.Retention)
	}
	if c.MaxSize < 0 {
		v.Errorf("max_size", "must not be negative")
	}
	known := map[string]bool{}
	for _, n := range CollectorNames() {
		known[n] = true
	}
	seen := map[string]bool{}
	for i, n := range c.Collectors {
		p := fmt.Sprintf("collectors[%d]", i)
		switch {
		case !known[n]:
			v.Errorf(p, "unknown collector %q (known: %s)", n, strings.Join(CollectorNames(), ", "))
		case seen[n]:
			v.Errorf(p, "collector %q listed twice", n)
		}
		seen[n] = true
	}
	for _, f := range []struct{ path, val string }{{"proc_path", c.ProcPath}, {"sys_path", c.SysPath}, {"root_path", c.RootPath}} {
		if !strings.HasPrefix(f.val, "/") {
			v.Errorf(f.path, "must be an absolute path, not %q", f.val)
		}
	}
	for _, f := range []struct{ path, re string }{
		{"filesystem_mount_points_exclude", c.FilesystemMountPointsExclude},
		{"filesystem_fs_types_exclude", c.FilesystemFSTypesExclude},
	} {
		if _, err := regexp.Compile(f.re); err != nil {
			v.Errorf(f.path, "invalid regular expression: %v", err)
		}
	}
	if d := c.TextfileDirectory; d != "" && !filepath.IsAbs(d) {
		v.Errorf("textfile_directory", "must be an absolute path, not %q", d)
	}
	for _, k := range sortedKeys(c.ExternalLabels) {
		switch {
		case !model.LegacyValidation.IsValidLabelName(k):
			v.Errorf("external_labels."+k, "invalid label name %q (want [a-zA-Z_][a-zA-Z0-9_]*)", k)
		case strings.HasPrefix(k, "__"):
			v.Errorf("external_labels."+k, "label names starting with __ are reserved")
		case c.ExternalLabels[k] == "":
			v.Errorf("external_labels."+k, "must not be empty")
		}
	}
	if c.MountTimeout <= 0 {
		v.Errorf("mount_timeout", "must be positive")
	}
	if c.Query.MaxSamples <= 0 {
		v.Errorf("query.max_samples", "must be positive")
	}
	if c.Query.Timeout <= 0 {
		v.Errorf("query.timeout", "must be positive")
	}
	if c.Query.MaxPoints <= 0 {
		v.Errorf("query.max_points", "must be positive")
	}
	if c.Query.LookbackDelta <= 0 {
		v.Errorf("query.lookback_delta", "must be positive")
	}
	c.validateAlerting(v)
	names := map[string]bool{}
	for i, r := range c.RemoteWrite {
		p := fmt.Sprintf("remote_write[%d]", i)
		u, err := url.Parse(r.URL)
		if r.URL == "" {
			v.Errorf(p+".url", "is required")
		} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf(p+".url", "must be an http:// or https:// URL, not %q", r.URL)
		} else if u.User != nil {
			v.Errorf(p+".url", "must not contain credentials; use basic_auth_user and basic_auth_password")
		}
		r = r.withDefaults()
		if names[r.Name] {
			v.Errorf(p+".name", "receiver name %q used twice", r.Name)
		}
		names[r.Name] = true
		if r.BasicAuthPassword != "" && r.BasicAuthUser == "" {
			v.Errorf(p+".basic_auth_user", "is required with basic_auth_password")
		}
		if r.BasicAuthPassword != "" && r.BearerToken != "" {
			v.Errorf(p+".bearer_token", "cannot be combined with basic auth")
		}
		if r.QueueSize < 0 || r.BatchSize < 0 {
			v.Errorf(p, "queue_size and batch_size must not be negative")
		}
		if r.BatchSize > r.QueueSize {
			v.Errorf(p+".batch_size", "must not exceed queue_size (%d)", r.QueueSize)
		}
		if r.MinBackoff > r.MaxBackoff {
			v.Errorf(p+".min_backoff", "must not exceed max_backoff (%s)", r.MaxBackoff)
		}
	}
}

func (c *Config) validateAlerting(v *confkit.Validator) {
	if c.Rules.EvaluationInterval < time.Second {
		v.Errorf("rules.evaluation_interval", "must be at least 1s, not %s", c.Rules.EvaluationInterval)
	}
	for i, f := range c.Rules.Files {
		p := fmt.Sprintf("rules.files[%d]", i)
		if !filepath.IsAbs(f) {
			v.Errorf(p, "must be an absolute path or glob, not %q", f)
			continue
		}
		if _, err := filepath.Glob(f); err != nil {
			v.Errorf(p, "bad glob %q: %v", f, err)
		}
	}
	if c.Alerting.ResendDelay <= 0 {
		v.Errorf("alerting.resend_delay", "must be positive")
	}
	if c.Alerting.QueueSize <= 0 {
		v.Errorf("alerting.queue_size", "must be positive")
	}
	if u := c.Alerting.ExternalURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			v.Errorf("alerting.external_url", "must be an http:// or https:// URL, not %q", u)
		}
	}
	for _, dests := range []struct {
		kind string
		list []NotifyConfig
	}{{"alertmanagers", c.Alerting.Alertmanagers}, {"webhooks", c.Alerting.Webhooks}} {
		for i, n := range dests.list {
			p := fmt.Sprintf("alerting.%s[%d]", dests.kind, i)
			u, err := url.Parse(n.URL)
			switch {
			case n.URL == "":
				v.Errorf(p+".url", "is required")
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				v.Errorf(p+".url", "must be an http:// or https:// URL, not %q", n.URL)
			}
			if n.Timeout < 0 {
				v.Errorf(p+".timeout", "must not be negative")
			}
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// externalLabels returns ExternalLabels as sorted labels.
func (c *Config) externalLabels() labels.Labels {
	return labels.FromMap(c.ExternalLabels)
}

// instance returns Instance, or the host name, or "localhost".
func (c *Config) instance() string {
	if c.Instance != "" {
		return c.Instance
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// compileOrNil compiles a pattern Validate accepted; empty means the
// collector's default.
func compileOrNil(re string) *regexp.Regexp {
	if re == "" {
		return nil
	}
	return regexp.MustCompile(re)
}
