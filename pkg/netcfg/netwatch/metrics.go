package netwatch

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the watcher's Prometheus collectors.
type metrics struct {
	changes    *prometheus.CounterVec // by link and kind
	reconciled *prometheus.CounterVec // by link
	probes     *prometheus.CounterVec // by result
}

var (
	linkUpDesc = prometheus.NewDesc("hostd_netcfg_link_up",
		"Whether the link can carry traffic (admin up, carrier, operational state not down).", []string{"link"}, nil)
	linkMTUDesc = prometheus.NewDesc("hostd_netcfg_link_mtu_bytes",
		"MTU of the link.", []string{"link"}, nil)
	onlineDesc = prometheus.NewDesc("hostd_netcfg_online",
		"1 when the host has a usable default route (and the connectivity probe, if configured, passes).", nil, nil)
)

// stateCollector reports link state from the current snapshot, so links
// that disappear leave no stale series.
type stateCollector struct{ w *Watcher }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- linkUpDesc
	ch <- linkMTUDesc
	ch <- onlineDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.State()
	for _, l := range s.Links {
		ch <- prometheus.MustNewConstMetric(linkUpDesc, prometheus.GaugeValue, float64(boolInt(l.Usable())), l.Name)
		ch <- prometheus.MustNewConstMetric(linkMTUDesc, prometheus.GaugeValue, float64(l.MTU), l.Name)
	}
	ch <- prometheus.MustNewConstMetric(onlineDesc, prometheus.GaugeValue, float64(boolInt(s.Online)))
}

func newMetrics(reg prometheus.Registerer, w *Watcher) (*metrics, error) {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_link_changes_total",
			Help: "Changes netlink reported, by link and kind (link, address, route).",
		}, []string{"link", "kind"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_reconcile_actions_total",
			Help: "Changes made to bring a declared link back to its configured state.",
		}, []string{"link"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hostd_netcfg_probes_total",
			Help: "Connectivity probes, by result (ok, failed).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.changes, m.reconciled, m.probes, stateCollector{w}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
