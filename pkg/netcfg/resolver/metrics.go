package resolver

import (
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the resolver's Prometheus collectors.
type metrics struct {
	queries     *prometheus.CounterVec   // by protocol
	responses   *prometheus.CounterVec   // by source and rcode
	cacheHits   prometheus.Counter       //
	cacheMisses prometheus.Counter       //
	upstreamDur *prometheus.HistogramVec // by upstream
	upstreamErr *prometheus.CounterVec   // by upstream

	// Resolved once, for the wire path.
	udp, tcp   prometheus.Counter
	cacheRcode func(rcode int) prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, cache *Cache) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_dns_queries_total",
			Help: "DNS queries received, by protocol (udp, tcp, api).",
		}, []string{"protocol"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_dns_responses_total",
			Help: "DNS responses sent, by where the answer came from (hosts, cache, upstream, local) and response code.",
		}, []string{"source", "rcode"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_netcfg_dns_cache_hits_total",
			Help: "DNS queries answered from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_netcfg_dns_cache_misses_total",
			Help: "DNS queries not found in the cache.",
		}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hostd_netcfg_dns_upstream_duration_seconds",
			Help:    "Time upstream DNS servers took to answer, including failures.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"upstream"}),
		upstreamErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_dns_upstream_errors_total",
			Help: "Queries an upstream DNS server did not answer usefully (timeout, refused, SERVFAIL).",
		}, []string{"upstream"}),
	}
	m.udp = m.queries.WithLabelValues("udp")
	m.tcp = m.queries.WithLabelValues("tcp")
	byRcode := make([]prometheus.Counter, 16)
	for rc := range byRcode {
		name, ok := dns.RcodeToString[rc]
		if !ok {
			name = fmt.Sprint(rc)
		}
		byRcode[rc] = m.responses.WithLabelValues(SourceCache, name)
	}
	m.cacheRcode = func(rc int) prometheus.Counter { return byRcode[rc&0x0f] }
	if reg == nil {
		return m, nil
	}
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hostd_netcfg_dns_cache_entries",
		Help: "Answers held in the DNS cache.",
	}, func() float64 { return float64(cache.Len()) })
	for _, c := range []prometheus.Collector{m.queries, m.responses, m.cacheHits, m.cacheMisses, m.upstreamDur, m.upstreamErr, entries} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
