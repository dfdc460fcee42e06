package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the proxy's state at scrape time: xray's traffic
// counters of the running instance and the latest probe.
type collector struct {
	s *Service

	traffic *prometheus.Desc
	up      *prometheus.Desc
	latency *prometheus.Desc
	probes  *prometheus.Desc
}

func newCollector(s *Service) *collector {
	return &collector{
		s: s,
		traffic: prometheus.NewDesc("hostd_proxy_traffic_bytes_total",
			"Bytes through the proxy since it last started, by inbound/outbound handler and direction (uplink: towards the destination).",
			[]string{"kind", "tag", "direction"}, nil),
		up: prometheus.NewDesc("hostd_proxy_up",
			"1 if the latest health probe through the server succeeded, else 0.", nil, nil),
		latency: prometheus.NewDesc("hostd_proxy_probe_latency_seconds",
			"Time to the response headers of the latest successful health probe.", nil, nil),
		probes: prometheus.NewDesc("hostd_proxy_probes_total",
			"Health probes through the server, by result.", []string{"result"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.traffic
	ch <- c.up
	ch <- c.latency
	ch <- c.probes
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.s.Details()
	for _, k := range d.TrafficKeys() {
		kind, tag := splitKey(k)
		t := d.Traffic[k]
		ch <- prometheus.MustNewConstMetric(c.traffic, prometheus.CounterValue, float64(t.Up), kind, tag, "uplink")
		ch <- prometheus.MustNewConstMetric(c.traffic, prometheus.CounterValue, float64(t.Down), kind, tag, "downlink")
	}
	up := 0.0
	if d.State == StateUp {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if p := d.LastProbe; p != nil && p.OK {
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, p.Latency().Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(d.ProbesOK), "ok")
	ch <- prometheus.MustNewConstMetric(c.probes, prometheus.CounterValue, float64(d.ProbesFailed), "failed")
}

func splitKey(k string) (kind, tag string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}
