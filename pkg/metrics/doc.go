// Package metrics is hostd's replacement for node_exporter, Prometheus and
// a Grafana dashboard on a single host.
//
// It owns:
//   - the node collectors (one file per collector, node_exporter's metric
//     names, labels, help text and units, read through
//     github.com/prometheus/procfs with the /proc and /sys roots configurable),
//   - the scrape loop that gathers everything hostd publishes every interval
//     and appends it into an embedded Prometheus TSDB under the state
//     directory (retention, size limit, stale markers),
//   - the optional Remote Write 1.0 sender,
//   - the Prometheus-compatible query API (/api/v1/...) built on the PromQL
//     engine, and the built-in dashboard served at "/".
//
// It does not own the HTTP listener, the /metrics, /healthz, /readyz and
// /status endpoints (the daemon serves those from the hostd-wide gatherer),
// nor the metrics other services publish about themselves.
package metrics
