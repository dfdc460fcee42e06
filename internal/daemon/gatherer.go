package daemon

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gatherer gathers hostd's own registry plus the registry of each current
// service instance. Replacing a service replaces its registry, so a
// restarted service registers its collectors afresh.
type gatherer struct {
	root *prometheus.Registry
	mu   sync.Mutex
	regs map[string]*prometheus.Registry
}

func newGatherer(root *prometheus.Registry) *gatherer {
	return &gatherer{root: root, regs: map[string]*prometheus.Registry{}}
}

// fresh returns a new registry for the named service, replacing the old.
func (g *gatherer) fresh(name string) *prometheus.Registry {
	r := prometheus.NewRegistry()
	g.mu.Lock()
	g.regs[name] = r
	g.mu.Unlock()
	return r
}

func (g *gatherer) drop(name string) {
	g.mu.Lock()
	delete(g.regs, name)
	g.mu.Unlock()
}

// Gather implements prometheus.Gatherer.
func (g *gatherer) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	gs := prometheus.Gatherers{g.root}
	names := make([]string, 0, len(g.regs))
	for n := range g.regs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		gs = append(gs, g.regs[n])
	}
	g.mu.Unlock()
	return gs.Gather()
}
