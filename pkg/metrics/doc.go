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
//   - the job and instance labels of stored series and their up series,
//   - the optional Remote Write 1.0 sender (with external labels),
//   - recording and alerting rules in Prometheus' format, evaluated by
//     Prometheus' rule manager, the built-in rule file, and the notifier
//     that posts alerts to Alertmanagers (v2 API) and webhooks,
//   - the Prometheus-compatible HTTP API (/api/v1/... query, metadata,
//     status, targets, rules and alerts; /-/healthy, /-/ready) built on the
//     PromQL engine, and the built-in dashboard served at "/".
//
// It does not own the HTTP listener, the /metrics, /healthz, /readyz and
// /status endpoints (the daemon serves those from the hostd-wide gatherer),
// nor the metrics other services publish about themselves, nor any
// Alertmanager: routing, grouping, silences and delivery to people are
// Alertmanager's.
package metrics
