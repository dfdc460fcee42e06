package resolver

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// linkRoutes are the upstreams links learned from the network (DHCP
// leases): each link's servers answer names under its search domains
// (split DNS), and come after the configured upstreams for everything
// else. The configured Domains win over a link's domain of the same name.
type linkRoutes struct {
	timeout time.Duration

	mu    sync.Mutex
	links map[string]linkDNS
	table atomic.Pointer[[]route] // nil: only the config's routes
}

type linkDNS struct {
	servers []Upstream
	domains []string
}

// table returns the routes in use: longest domain first, "." last.
func (r *Resolver) table() []route {
	if t := r.links.table.Load(); t != nil {
		return *t
	}
	return r.routes
}

// SetLinkUpstreams replaces the DNS servers and search domains learned on
// link (no servers: the link has none any more). Upstreams that stay keep
// their state and connections; those that go are closed.
func (r *Resolver) SetLinkUpstreams(link string, servers []Upstream, domains []string) error {
	for i, u := range servers {
		if err := u.Validate(); err != nil {
			return fmt.Errorf("link %s upstream %d: %w", link, i, err)
		}
	}
	r.links.mu.Lock()
	defer r.links.mu.Unlock()
	if r.links.links == nil {
		r.links.links = map[string]linkDNS{}
	}
	if len(servers) == 0 {
		delete(r.links.links, link)
	} else {
		var doms []string
		for _, d := range domains {
			fq := dns.Fqdn(strings.ToLower(strings.TrimPrefix(d, ".")))
			if _, ok := dns.IsDomainName(fq); ok && fq != "." {
				doms = append(doms, fq)
			}
		}
		r.links.links[link] = linkDNS{servers: slices.Clone(servers), domains: doms}
	}

	old := r.table()
	have := map[string]*upstreamState{}
	for _, rt := range old {
		for _, u := range rt.ups {
			have[rt.domain+"|"+u.ex.up.String()] = u
		}
	}
	used := map[*upstreamState]bool{}
	var buildErr error
	state := func(domain string, u Upstream) *upstreamState {
		if s, ok := have[domain+"|"+u.String()]; ok {
			used[s] = true
			return s
		}
		ex, err := newExchanger(u, r.links.timeout, r.now)
		if err != nil {
			buildErr = err
			return nil
		}
		s := &upstreamState{ex: ex}
		have[domain+"|"+u.String()] = s
		used[s] = true
		return s
	}
	var table []route
	static := map[string]bool{}
	var def route
	for _, rt := range r.routes {
		ups := make([]*upstreamState, 0, len(rt.ups))
		for _, u := range rt.ups {
			ups = append(ups, state(rt.domain, u.ex.up))
		}
		if rt.domain == "." {
			def = route{domain: ".", ups: ups}
			continue
		}
		static[rt.domain] = true
		table = append(table, route{domain: rt.domain, ups: ups})
	}
	byDomain := map[string]*route{}
	seenDef := map[string]bool{}
	for _, u := range def.ups {
		seenDef[u.ex.up.String()] = true
	}
	for _, name := range slices.Sorted(maps.Keys(r.links.links)) {
		l := r.links.links[name]
		for _, d := range l.domains {
			if static[d] {
				continue
			}
			rt := byDomain[d]
			if rt == nil {
				rt = &route{domain: d}
				byDomain[d] = rt
			}
			for _, u := range l.servers {
				rt.ups = append(rt.ups, state(d, u))
			}
		}
		for _, u := range l.servers {
			if !seenDef[u.String()] {
				seenDef[u.String()] = true
				def.ups = append(def.ups, state(".", u))
			}
		}
	}
	if buildErr != nil {
		return fmt.Errorf("link %s upstreams: %w", link, buildErr)
	}
	for _, d := range slices.Sorted(maps.Keys(byDomain)) {
		table = append(table, *byDomain[d])
	}
	sort.SliceStable(table, func(i, j int) bool {
		return dns.CountLabel(table[i].domain) > dns.CountLabel(table[j].domain)
	})
	table = append(table, def)
	r.links.table.Store(&table)
	for _, rt := range old {
		for _, u := range rt.ups {
			if !used[u] {
				u.ex.close()
			}
		}
	}
	return nil
}
