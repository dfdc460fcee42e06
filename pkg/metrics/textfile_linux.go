package metrics

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hostd/hostd/internal/safefile"
)

func init() { registerCollector("textfile", newTextfileCollector) }

// maxTextfileSize bounds one *.prom file.
const maxTextfileSize = 4 << 20

var (
	textfileMtimeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "textfile", "mtime_seconds"),
		"Unixtime mtime of textfiles successfully read.", []string{"file"}, nil)
	textfileErrorDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "textfile", "scrape_error"),
		"1 if there was an error opening or reading a file, 0 otherwise", nil, nil)
)

// textfileCollector exports the metrics of the *.prom files in a
// directory (what cron jobs and other tools write), as node_exporter's
// textfile collector: each file's families, node_textfile_mtime_seconds
// per file read and node_textfile_scrape_error. A file that cannot be
// read or parsed is skipped and sets the error to 1; so does a family
// two files both define, or a sample with a timestamp.
type textfileCollector struct {
	h *host

	mu    sync.Mutex
	names map[string]bool // families read by the last Update
}

func newTextfileCollector(h *host) (collector, error) { return &textfileCollector{h: h}, nil }

// owns tells whether the last Update exported family name.
func (c *textfileCollector) owns(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[name]
}

func (c *textfileCollector) Update(ch emitter) error {
	dir := c.h.opts.TextfileDir
	if dir == "" {
		// No directory: no files and no error, as node_exporter reports.
		ch(c.h.series.metric(textfileErrorDesc, prometheus.GaugeValue, 0))
		return nil
	}
	failed := 0.0
	paths, err := filepath.Glob(filepath.Join(dir, "*.prom"))
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(paths)
	if _, err := os.Stat(dir); err != nil {
		c.h.logger.Debug("textfile directory unreadable", "dir", dir, "err", err)
		failed = 1
	}
	seen := map[string]string{} // family -> file that defined it
	defer func() {
		names := make(map[string]bool, len(seen))
		for n := range seen {
			names[n] = true
		}
		c.mu.Lock()
		c.names = names
		c.mu.Unlock()
	}()
	for _, path := range paths {
		fams, mtime, err := readTextfile(path)
		if err == nil {
			for name := range fams {
				if other, dup := seen[name]; dup {
					err = fmt.Errorf("metric %s defined in %s too", name, other)
					break
				}
			}
		}
		if err != nil {
			c.h.logger.Debug("textfile skipped", "file", path, "err", err)
			failed = 1
			continue
		}
		names := make([]string, 0, len(fams))
		for name := range fams {
			seen[name] = path
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			textfileFamily(ch, fams[name])
		}
		ch(c.h.series.metric(textfileMtimeDesc, prometheus.GaugeValue, mtime, path))
	}
	ch(c.h.series.metric(textfileErrorDesc, prometheus.GaugeValue, failed))
	return nil
}

// readTextfile reads and parses one file, returning its families and its
// mtime in seconds.
func readTextfile(path string) (map[string]*dto.MetricFamily, float64, error) {
	b, err := safefile.Read(path, maxTextfileSize)
	if err != nil {
		return nil, 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("parse %s: %w", path, err)
	}
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			if m.TimestampMs != nil {
				return nil, 0, fmt.Errorf("%s: metric %s has a client-side timestamp, which is not supported", path, name)
			}
		}
		if mf.Help == nil {
			h := "Metric read from " + path
			mf.Help = &h
		}
	}
	// Whole seconds, as node_exporter reports them.
	return fams, float64(st.ModTime().Unix()), nil
}

// textfileFamily sends a parsed family as const metrics. Every sample gets
// the union of the family's label names, missing ones empty, as
// node_exporter does.
func textfileFamily(ch emitter, mf *dto.MetricFamily) {
	nameSet := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			nameSet[l.GetName()] = true
		}
	}
	names := make([]string, 0, len(nameSet))
	for n := range nameSet {
		names = append(names, n)
	}
	sort.Strings(names)
	desc := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil)
	for _, m := range mf.GetMetric() {
		vals := make([]string, len(names))
		for _, l := range m.GetLabel() {
			vals[sort.SearchStrings(names, l.GetName())] = l.GetValue()
		}
		var (
			metric prometheus.Metric
			err    error
		)
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), vals...)
		case dto.MetricType_GAUGE:
			metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), vals...)
		case dto.MetricType_SUMMARY:
			q := map[float64]float64{}
			for _, qq := range m.GetSummary().GetQuantile() {
				q[qq.GetQuantile()] = qq.GetValue()
			}
			metric, err = prometheus.NewConstSummary(desc, m.GetSummary().GetSampleCount(), m.GetSummary().GetSampleSum(), q, vals...)
		case dto.MetricType_HISTOGRAM:
			b := map[float64]uint64{}
			for _, bb := range m.GetHistogram().GetBucket() {
				b[bb.GetUpperBound()] = bb.GetCumulativeCount()
			}
			metric, err = prometheus.NewConstHistogram(desc, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), b, vals...)
		default:
			metric, err = prometheus.NewConstMetric(desc, prometheus.UntypedValue, m.GetUntyped().GetValue(), vals...)
		}
		if err != nil {
			// A name or label the registry refuses: the family is dropped
			// by the gatherer with an error naming it.
			metric = prometheus.NewInvalidMetric(desc, fmt.Errorf("textfile metric %s: %w", mf.GetName(), err))
		}
		ch(metric)
	}
}
