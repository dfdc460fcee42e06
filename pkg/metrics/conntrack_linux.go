package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"

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
type conntrackCollector struct {
	h *host

	mu  sync.Mutex // guards buf between concurrent gathers
	buf []byte
}

func newConntrackCollector(h *host) (collector, error) { return &conntrackCollector{h: h}, nil }

func (c *conntrackCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	// node_exporter also reports the table without the statistics.
	if c.buf, err = c.h.files.readFileReuse(c.h.procPath("net", "stat", "nf_conntrack"), c.buf); err != nil {
		return nil
	}
	t, err := parseConntrackStat(c.buf)
	if err != nil {
		return nil
	}
	for _, d := range conntrackStatDescs {
		ch(c.h.series.metric(d.desc, prometheus.GaugeValue, float64(d.get(t))))
	}
	return nil
}

// parseConntrackStat sums the per-CPU lines of /proc/net/stat/nf_conntrack
// (a header line, then 16 or 17 hexadecimal columns per CPU, as procfs
// reads them; search_restart is the 17th, missing before Linux 2.6.35).
func parseConntrackStat(b []byte) (conntrackTotals, error) {
	var t conntrackTotals
	var cols [17]uint64
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if n == 1 || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		width := 0
		for rest := line; ; width++ {
			var f []byte
			if f, rest = nextField(rest); f == nil {
				break
			}
			if width == len(cols) {
				return t, fmt.Errorf("line %d: more than %d columns", n, len(cols))
			}
			v, err := strconv.ParseUint(string(f), 16, 64)
			if err != nil {
				return t, fmt.Errorf("line %d: %w", n, err)
			}
			cols[width] = v
		}
		if width < 16 {
			return t, fmt.Errorf("line %d: %d columns, want 16 or 17", n, width)
		}
		t.found += cols[2]
		t.invalid += cols[4]
		t.ignore += cols[5]
		t.insert += cols[8]
		t.insertFailed += cols[9]
		t.drop += cols[10]
		t.earlyDrop += cols[11]
		if width == 17 {
			t.searchRestart += cols[16]
		}
	}
	return t, nil
}
