package metrics

import "strings"

// Jobs of the stored series: the node collectors' families under one,
// everything else hostd publishes under the other.
const (
	JobNode  = "node"
	JobHostd = "hostd"
)

// targets are the scrape's jobs: node (the node_ families, when any node
// collector runs) and hostd (the rest), both with the configured instance.
// hostd's process_ families are stored under both: under node they are
// what node_exporter's own are under a Prometheus scraping it, the
// process that exports the node's metrics (Node Exporter Full charts
// them there).
func (s *Service) targets() []ScrapeTarget {
	inst := s.cfg.instance()
	var ts []ScrapeTarget
	if len(s.node.Names()) > 0 {
		ts = append(ts, ScrapeTarget{Job: JobNode, Instance: inst, Families: s.node.Owns, Also: isProcessFamily})
	}
	return append(ts, ScrapeTarget{Job: JobHostd, Instance: inst})
}

// isProcessFamily tells the process collector's families (process_cpu_
// seconds_total, process_open_fds, ...).
func isProcessFamily(name string) bool { return strings.HasPrefix(name, "process_") }
