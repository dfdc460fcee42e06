package metrics

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/service"
)

// DefaultRulesFile names hostd's built-in rule file in /api/v1/rules and
// in rule errors; it is embedded, not read from disk.
const DefaultRulesFile = "builtin:hostd.rules.yml"

//go:embed rules/hostd.rules.yml
var defaultRules []byte

// maxRuleFileSize bounds one rule file read from disk.
const maxRuleFileSize = 4 << 20

// ruleLoader reads rule files for the rule manager: the built-in file from
// the binary, the others through the bounded file reader.
type ruleLoader struct {
	parser parser.Parser
	logger *slog.Logger
}

var _ rules.GroupLoader = ruleLoader{}

func (l ruleLoader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	b := defaultRules
	if identifier != DefaultRulesFile {
		var err error
		if b, err = safefile.Read(identifier, maxRuleFileSize); err != nil {
			return nil, []error{fmt.Errorf("read rule file: %w", err)}
		}
	}
	rgs, errs := rulefmt.Parse(b, ignoreUnknownFields, scheme, l.parser, l.logger)
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
	}
	return rgs, errs
}

func (l ruleLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// ruleFiles lists the rule files of cfg: the built-in one unless turned
// off, then every file the globs match, sorted.
func ruleFiles(cfg RulesConfig) ([]string, error) {
	var files []string
	if cfg.Default {
		files = append(files, DefaultRulesFile)
	}
	for _, g := range cfg.Files {
		m, err := filepath.Glob(g)
		if err != nil {
			return nil, fmt.Errorf("expand rule file glob %s: %w", g, err)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	return files, nil
}

// checkRuleFiles loads every rule file and returns all their problems.
func checkRuleFiles(l ruleLoader, files []string) error {
	var msgs []string
	for _, f := range files {
		_, errs := l.Load(f, false, model.UTF8Validation)
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("load rules: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// postableAlert is an alert as Alertmanager's v2 API takes it (POST
// /api/v2/alerts), and as webhooks get it.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// NotifyStatus is one Alertmanager's or webhook's entry in the status.
type NotifyStatus struct {
	Kind      string    `json:"kind"` // alertmanager or webhook
	URL       string    `json:"url"`
	Sent      int64     `json:"sent"`   // alerts delivered
	Failed    int64     `json:"failed"` // POSTs that failed
	LastError string    `json:"last_error,omitempty"`
	LastSent  time.Time `json:"last_sent,omitzero"`
}

type notifyDest struct {
	kind, url string // url is where alerts are POSTed
	client    *http.Client
	timeout   time.Duration

	mu      sync.Mutex
	st      NotifyStatus
	failing bool
}

// Notifier sends the rule manager's alerts to Alertmanagers and webhooks.
// The rule manager hands alerts over without waiting (Send only queues);
// Run posts them in batches. The queue is bounded: beyond QueueSize the
// oldest alerts are dropped and counted. A failed POST is not retried:
// the rule manager sends every firing alert again after resend_delay, as
// Prometheus does.
type Notifier struct {
	// Clock stamps LastSent. Default: the real clock. Set before Run.
	Clock service.Clock

	dests     []*notifyDest
	external  labels.Labels
	queueSize int
	logger    *slog.Logger

	mu      sync.Mutex
	queue   []postableAlert
	dropped int64
	wake    chan struct{}
}

var _ rules.Sender = (*Notifier)(nil)

// maxAlertBatch is the most alerts in one POST, as in Prometheus.
const maxAlertBatch = 256

// NewNotifier builds the notifier for cfg; external labels are added to
// every alert that has no label of that name.
func NewNotifier(cfg AlertingConfig, external labels.Labels, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	n := &Notifier{external: external, queueSize: cfg.QueueSize, logger: logger, wake: make(chan struct{}, 1)}
	add := func(kind string, nc NotifyConfig, target string) {
		to := nc.Timeout
		if to <= 0 {
			to = 10 * time.Second
		}
		n.dests = append(n.dests, &notifyDest{
			kind: kind, url: target, timeout: to,
			// The timeout covers the whole POST: connect, send, answer.
			client: &http.Client{Timeout: to},
			st:     NotifyStatus{Kind: kind, URL: redactURL(nc.URL)},
		})
	}
	for _, am := range cfg.Alertmanagers {
		add("alertmanager", am, strings.TrimSuffix(am.URL, "/")+"/api/v2/alerts")
	}
	for _, wh := range cfg.Webhooks {
		add("webhook", wh, wh.URL)
	}
	return n
}

// Send queues alerts; it implements rules.Sender and never blocks.
func (n *Notifier) Send(alerts ...*notifier.Alert) {
	if len(n.dests) == 0 {
		return
	}
	n.mu.Lock()
	for _, a := range alerts {
		pa := postableAlert{
			Labels:      a.Labels.Map(),
			Annotations: a.Annotations.Map(),
			StartsAt:    a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
		}
		n.external.Range(func(l labels.Label) {
			if _, ok := pa.Labels[l.Name]; !ok {
				pa.Labels[l.Name] = l.Value
			}
		})
		n.queue = append(n.queue, pa)
	}
	if over := len(n.queue) - n.queueSize; over > 0 {
		n.queue = append(n.queue[:0:0], n.queue[over:]...)
		n.dropped += int64(over)
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *Notifier) now() time.Time {
	if n.Clock == nil {
		return time.Now()
	}
	return n.Clock.Now()
}

// Run posts queued alerts until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		n.mu.Lock()
		k := min(len(n.queue), maxAlertBatch)
		batch := append([]postableAlert(nil), n.queue[:k]...)
		n.queue = n.queue[k:]
		n.mu.Unlock()
		if k == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-n.wake:
				continue
			}
		}
		body, err := json.Marshal(batch)
		if err != nil {
			n.logger.Error("encode alerts", "err", err)
			continue
		}
		var wg sync.WaitGroup
		for _, d := range n.dests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.post(ctx, d, body, len(batch))
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (n *Notifier) post(ctx context.Context, d *notifyDest, body []byte, count int) {
	err := d.send(ctx, body)
	if ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	wasFailing := d.failing
	d.failing = err != nil
	if err != nil {
		d.st.Failed++
		d.st.LastError = err.Error()
	} else {
		d.st.Sent += int64(count)
		d.st.LastSent = n.now()
		d.st.LastError = ""
	}
	d.mu.Unlock()
	switch {
	case err != nil && !wasFailing:
		n.logger.Warn("cannot send alerts; sending again after resend_delay while they fire", "to", d.kind, "url", d.st.URL, "err", err)
	case err == nil && wasFailing:
		n.logger.Info("sending alerts again", "to", d.kind, "url", d.st.URL)
	}
}

var errNotifyTimeout = errors.New("timeout")

func (d *notifyDest) send(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", redactURL(d.url), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hostd")
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() && ctx.Err() == nil {
				return fmt.Errorf("post alerts to %s: no answer within %s (metrics.alerting.%ss[].timeout): %w",
					redactURL(d.url), d.timeout, d.kind, errNotifyTimeout)
			}
			err = ue.Err
		}
		return fmt.Errorf("post alerts to %s: %w", redactURL(d.url), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post alerts to %s: %s: %s", redactURL(d.url), resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Status returns each destination's counters.
func (n *Notifier) Status() []NotifyStatus {
	out := make([]NotifyStatus, 0, len(n.dests))
	for _, d := range n.dests {
		d.mu.Lock()
		out = append(out, d.st)
		d.mu.Unlock()
	}
	return out
}

// Dropped is the number of alerts dropped because the queue was full.
func (n *Notifier) Dropped() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

var (
	notifySentDesc = prometheus.NewDesc("hostd_metrics_notifications_sent_total",
		"Alerts delivered to an Alertmanager or webhook.", []string{"kind", "url"}, nil)
	notifyErrorsDesc = prometheus.NewDesc("hostd_metrics_notifications_errors_total",
		"POSTs of alerts to an Alertmanager or webhook that failed.", []string{"kind", "url"}, nil)
	notifyDroppedDesc = prometheus.NewDesc("hostd_metrics_notifications_dropped_total",
		"Alerts dropped because the notification queue was full.", nil, nil)
)

// Describe implements prometheus.Collector.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) {
	ch <- notifySentDesc
	ch <- notifyErrorsDesc
	ch <- notifyDroppedDesc
}

// Collect implements prometheus.Collector.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for _, st := range n.Status() {
		ch <- prometheus.MustNewConstMetric(notifySentDesc, prometheus.CounterValue, float64(st.Sent), st.Kind, st.URL)
		ch <- prometheus.MustNewConstMetric(notifyErrorsDesc, prometheus.CounterValue, float64(st.Failed), st.Kind, st.URL)
	}
	ch <- prometheus.MustNewConstMetric(notifyDroppedDesc, prometheus.CounterValue, float64(n.Dropped()))
}

// checkRules loads every configured rule file, so a bad one fails the
// config instead of the running service.
func (s *Service) checkRules() error {
	files, err := ruleFiles(s.cfg.Rules)
	if err != nil {
		return err
	}
	return checkRuleFiles(ruleLoader{parser: s.api.parser, logger: s.logger}, files)
}

// startRules builds the rule manager over the open TSDB, loads the rule
// files and starts evaluating; the returned stop waits for every group to
// finish. Rules are evaluated with the query API's engine and limits.
func (s *Service) startRules(ctx context.Context, store *Storage) (*rules.Manager, func(), error) {
	files, err := ruleFiles(s.cfg.Rules)
	if err != nil {
		return nil, nil, err
	}
	loader := ruleLoader{parser: s.api.parser, logger: s.logger.With("component", "rules")}
	if err := checkRuleFiles(loader, files); err != nil {
		return nil, nil, err
	}
	var extURL *url.URL
	if s.cfg.Alerting.ExternalURL != "" {
		if extURL, err = url.Parse(s.cfg.Alerting.ExternalURL); err != nil {
			return nil, nil, fmt.Errorf("parse alerting.external_url: %w", err)
		}
	}
	mgr := rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     extURL,
		QueryFunc:       rules.EngineQueryFunc(s.api.Engine(), store.DB),
		NotifyFunc:      rules.SendAlerts(s.notifier, s.cfg.Alerting.ExternalURL),
		Context:         ctx,
		AppendableV2:    store.DB,
		Queryable:       store.DB,
		Logger:          s.logger.With("component", "rules"),
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     s.cfg.Alerting.ResendDelay,
		GroupLoader:     loader,
		Parser:          s.api.parser,
	})
	if err := mgr.Update(s.cfg.Rules.EvaluationInterval, files, s.cfg.externalLabels(), s.cfg.Alerting.ExternalURL, nil); err != nil {
		mgr.Stop()
		return nil, nil, fmt.Errorf("load rules: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mgr.Run()
	}()
	return mgr, func() {
		mgr.Stop()
		<-done
	}, nil
}
