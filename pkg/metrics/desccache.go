package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// descCache keeps the descriptors of collectors whose metric names come
// from the data (meminfo fields, vmstat counters): building a Desc
// validates and hashes its name, which is worth doing once, not per scrape.
type descCache struct {
	mu sync.Mutex
	m  map[string]*prometheus.Desc
}

func (c *descCache) get(name string, mk func() *prometheus.Desc) *prometheus.Desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.m[name]; ok {
		return d
	}
	if c.m == nil {
		c.m = map[string]*prometheus.Desc{}
	}
	d := mk()
	c.m[name] = d
	return d
}
