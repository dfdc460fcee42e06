package containers

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's collectors, registered on the instance's
// registry under hostd_containers_.
type metrics struct {
	engineUp       prometheus.Gauge
	lastPrune      prometheus.Gauge
	lastReclaimed  prometheus.Gauge
	reclaimedTotal prometheus.Counter
	removed        *prometheus.CounterVec
	skipped        *prometheus.CounterVec
	prunes         *prometheus.CounterVec
	diskUsed       prometheus.Gauge
	diskSize       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "hostd", "containers"
	m := &metrics{
		engineUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "engine_up",
			Help: "Whether the Docker engine answered the last request (1) or not (0)."}),
		lastPrune: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_prune_timestamp_seconds",
			Help: "When the last prune (scheduled, manual or disk pressure) finished, as a Unix time."}),
		lastReclaimed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_prune_reclaimed_bytes",
			Help: "Bytes the last prune reclaimed."}),
		reclaimedTotal: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "reclaimed_bytes_total",
			Help: "Bytes reclaimed by all prunes."}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "removed_objects_total",
			Help: "Docker objects removed, by kind."}, []string{"kind"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "skipped_objects_total",
			Help: "Docker objects a prune meant to remove but found in use or gone, by kind."}, []string{"kind"}),
		prunes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "prunes_total",
			Help: "Prunes run, by trigger (schedule, manual, disk_pressure) and result (ok, error)."}, []string{"trigger", "result"}),
		diskUsed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "disk_used_bytes",
			Help: "Used bytes of the filesystem holding Docker's root directory."}),
		diskSize: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "disk_size_bytes",
			Help: "Size in bytes of the filesystem holding Docker's root directory."}),
	}
	for _, k := range Kinds() {
		m.removed.WithLabelValues(string(k))
		m.skipped.WithLabelValues(string(k))
	}
	for _, c := range []prometheus.Collector{m.engineUp, m.lastPrune, m.lastReclaimed, m.reclaimedTotal, m.removed, m.skipped, m.prunes, m.diskUsed, m.diskSize} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register containers metrics: %w", err)
		}
	}
	return m, nil
}
