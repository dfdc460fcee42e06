package metrics

import (
	"errors"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("conntrack", newConntrackCollector) }

func conntrackDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "nf_conntrack", name), help, nil, nil)
}

var (
	conntrackEntriesDesc = conntrackDesc("entries", "Number of currently allocated flow entries for connection tracking.")
	conntrackLimitDesc   = conntrackDesc("entries_limit", "Maximum size of connection tracking table.")
	conntrackStatDescs   = []struct {
		desc *prometheus.Desc
		get  func(s conntrackTotals) uint64
	}{
		{conntrackDesc("stat_found", "Number of searched entries which were successful."), func(s conntrackTotals) uint64 { return s.found }},
		{conntrackDesc("stat_invalid", "Number of packets seen which can not be tracked."), func(s conntrackTotals) uint64 { return s.invalid }},
		{conntrackDesc("stat_ignore", "Number of packets seen which are already connected to a conntrack entry."), func(s conntrackTotals) uint64 { return s.ignore }},
		{conntrackDesc("stat_insert", "Number of entries inserted into the list."), func(s conntrackTotals) uint64 { return s.insert }},
		{conntrackDesc("stat_insert_failed", "Number of entries for which list insertion was attempted but failed."), func(s conntrackTotals) uint64 { return s.insertFailed }},
		{conntrackDesc("stat_drop", "Number of packets dropped due to conntrack failure."), func(s conntrackTotals) uint64 { return s.drop }},
		{conntrackDesc("stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."), func(s conntrackTotals) uint64 { return s.earlyDrop }},
		{conntrackDesc("stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."), func(s conntrackTotals) uint64 { return s.searchRestart }},
	}
)

type conntrackTotals struct {
	found, invalid, ignore, insert, insertFailed, drop, earlyDrop, searchRestart uint64
}

// conntrackCollector exports the netfilter connection tracking table's
// size and its per-CPU statistics summed, as node_exporter does. A host
// without the nf_conntrack module has nothing to report.
type conntrackCollector struct{ h *host }

func newConntrackCollector(h *host) (collector, error) { return &conntrackCollector{h: h}, nil }

func (c *conntrackCollector) Update(ch emitter) error {
	count, err := c.h.files.readNumberFile(c.h.procPath("sys", "net", "netfilter", "nf_conntrack_count"))
	if errors.Is(err, fs.ErrNotExist) {
		return errNoData
	}
	if err != nil {
		return err
	}
	limit, err := c.h.files.readNumberFile(c.h.procPath("sys", "net", "netfilter", "nf_conntrack_max"))
	if err != nil {
		return err
	}
	ch(c.h.series.metric(conntrackEntriesDesc, prometheus.GaugeValue, count))
	ch(c.h.series.metric(conntrackLimitDesc, prometheus.GaugeValue, limit))
	stats, err := c.h.proc.ConntrackStat()
	if err != nil {
		return nil // node_exporter also reports the table without the statistics
	}
	var t conntrackTotals
	for _, s := range stats {
		t.found += s.Found
		t.invalid += s.Invalid
		t.ignore += s.Ignore
		t.insert += s.Insert
		t.insertFailed += s.InsertFailed
		t.drop += s.Drop
		t.earlyDrop += s.EarlyDrop
		t.searchRestart += s.SearchRestart
	}
	for _, d := range conntrackStatDescs {
		ch(c.h.series.metric(d.desc, prometheus.GaugeValue, float64(d.get(t))))
	}
	return nil
}
