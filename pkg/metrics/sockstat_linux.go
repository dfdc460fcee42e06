package metrics

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() { registerCollector("sockstat", newSockstatCollector) }

var sockstatUsedDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "sockstat", "sockets_used"),
	"Number of IPv4 sockets in use.", nil, nil)

// sockstatCollector exports /proc/net/sockstat and /proc/net/sockstat6,
// read through the kept files.
type sockstatCollector struct {
	h     *host
	descs descCache

	mu  sync.Mutex // guards buf between concurrent gathers
	buf []byte
}

func newSockstatCollector(h *host) (collector, error) { return &sockstatCollector{h: h}, nil }

func (c *sockstatCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s4, err := c.read(c.h.procPath("net", "sockstat"))
	if err != nil {
		return err
	}
	s6, err := c.read(c.h.procPath("net", "sockstat6"))
	if err != nil && !errors.Is(err, os.ErrNotExist) { // IPv6 may be disabled
		return err
	}
	for _, m := range sockstatMetrics(s4, c.h.pageSz, &c.descs, c.h.series) {
		ch(m)
	}
	if s6 != nil {
		for _, m := range sockstatMetrics(s6, c.h.pageSz, &c.descs, c.h.series) {
			ch(m)
		}
	}
	return nil
}

// read reads and parses one sockstat file.
func (c *sockstatCollector) read(path string) (*procfs.NetSockstat, error) {
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := parseSockstat(c.buf)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}

// parseSockstat reads a sockstat file as procfs does: "sockets: used N",
// then a line per protocol of its name and key/value pairs.
func parseSockstat(b []byte) (*procfs.NetSockstat, error) {
	var stat procfs.NetSockstat
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		protoB, rest := nextField(line)
		if protoB == nil {
			continue
		}
		proto := strings.TrimSuffix(string(protoB), ":")
		var p procfs.NetSockstatProtocol
		pairs := 0
		for {
			k, r := nextField(rest)
			if k == nil {
				break
			}
			v, r := nextField(r)
			if v == nil {
				return nil, fmt.Errorf("line %d: %s without a value", n, k)
			}
			rest = r
			x, err := strconv.Atoi(string(v))
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", n, k, err)
			}
			pairs++
			switch string(k) {
			case "used":
				if proto == "sockets" {
					stat.Used = &x
				}
			case "inuse":
				p.InUse = x
			case "orphan":
				p.Orphan = &x
			case "tw":
				p.TW = &x
			case "alloc":
				p.Alloc = &x
			case "mem":
				p.Mem = &x
			case "memory":
				p.Memory = &x
			}
		}
		if pairs == 0 {
			return nil, fmt.Errorf("line %d: %q has no key/value pairs", n, line)
		}
		if proto != "sockets" {
			p.Protocol = proto
			stat.Protocols = append(stat.Protocols, p)
		}
	}
	return &stat, nil
}

// sockstatMetrics converts one sockstat file; procfs already names the IPv6
// protocols "TCP6", "UDP6", ... as node_exporter does.
func sockstatMetrics(s *procfs.NetSockstat, pageSize int, descs *descCache, sc *seriesCache) []prometheus.Metric {
	var out []prometheus.Metric
	if s.Used != nil {
		out = append(out, sc.metric(sockstatUsedDesc, prometheus.GaugeValue, float64(*s.Used)))
	}
	for _, p := range s.Protocols {
		proto := p.Protocol
		add := func(state string, v float64) {
			d := descs.get(proto+"_"+state, func() *prometheus.Desc {
				return prometheus.NewDesc(prometheus.BuildFQName(namespace, "sockstat", proto+"_"+state),
					fmt.Sprintf("Number of %s sockets in state %s.", proto, state), nil, nil)
			})
			out = append(out, sc.metric(d, prometheus.GaugeValue, v))
		}
		add("inuse", float64(p.InUse))
		if p.Orphan != nil {
			add("orphan", float64(*p.Orphan))
		}
		if p.TW != nil {
			add("tw", float64(*p.TW))
		}
		if p.Alloc != nil {
			add("alloc", float64(*p.Alloc))
		}
		if p.Mem != nil {
			add("mem", float64(*p.Mem))
			add("mem_bytes", float64(*p.Mem*pageSize))
		}
		if p.Memory != nil {
			add("memory", float64(*p.Memory))
		}
	}
	return out
}
