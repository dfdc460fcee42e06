package metrics

// Jobs of the stored series: the node collectors' families under one,
// everything else hostd publishes under the other.
const (
	JobNode  = "node"
	JobHostd = "hostd"
)

// targets are the scrape's jobs: node (the node_ families, when any node
// collector runs) and hostd (the rest), both with the configured instance.
func (s *Service) targets() []ScrapeTarget {
	inst := s.cfg.instance()
	var ts []ScrapeTarget
	if len(s.node.Names()) > 0 {
		ts = append(ts, ScrapeTarget{Job: JobNode, Instance: inst, Families: s.node.Owns})
	}
	return append(ts, ScrapeTarget{Job: JobHostd, Instance: inst})
}
