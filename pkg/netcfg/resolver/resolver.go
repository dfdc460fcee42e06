package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/hostd/hostd/internal/service"
)

// Defaults used when Options leave a field zero.
const (
	DefaultTimeout     = 2 * time.Second // one upstream attempt
	DefaultDeadline    = 5 * time.Second // all attempts of one query
	DefaultCacheSize   = 10000
	DefaultMaxTTL      = 24 * time.Hour
	DefaultNegativeTTL = 5 * time.Minute
	// DefaultRetryAfter is how long an upstream that failed is tried only
	// after the others.
	DefaultRetryAfter = 30 * time.Second
)

// serverUDPSize is the EDNS0 buffer size advertised to clients.
const serverUDPSize = 1232

// Sources of an answer, as reported by Resolve and in metrics.
const (
	SourceHosts    = "hosts"
	SourceCache    = "cache"
	SourceUpstream = "upstream"
	SourceLocal    = "local" // made up by the resolver: FORMERR, NOTIMP, SERVFAIL
)

// ErrNoUpstream is the cause of a SERVFAIL when no upstream answered.
var ErrNoUpstream = errors.New("no upstream answered")

// Options configure a Resolver.
type Options struct {
	// Upstreams answer names no Domains entry routes elsewhere, tried in
	// order (the last one that failed is tried last).
	Upstreams []Upstream
	// Domains routes names under a domain (and the domain itself) to its
	// own upstreams; the longest matching domain wins.
	Domains map[string][]Upstream
	// HostsPath is a hosts(5) file answered from before anything else;
	// empty for none.
	HostsPath   string
	CacheSize   int           // entries; 0 means DefaultCacheSize, negative disables the cache
	MaxTTL      time.Duration // 0 means DefaultMaxTTL
	NegativeTTL time.Duration // 0 means DefaultNegativeTTL
	Timeout     time.Duration // one upstream attempt; 0 means DefaultTimeout
	Deadline    time.Duration // all attempts of one query; 0 means DefaultDeadline
	RetryAfter  time.Duration // 0 means DefaultRetryAfter

	Clock   service.Clock         // nil: service.RealClock
	Logger  *slog.Logger          // nil discards
	Metrics prometheus.Registerer // nil registers nothing

	// OnUpstreamHealth is called when the verdict about upstreams changes:
	// with ErrNoUpstream (wrapped with the last failure) when a query found
	// no upstream that answered, with nil when an upstream answered again.
	OnUpstreamHealth func(err error)
}

// Resolver answers DNS queries. It implements dns.Handler.
type Resolver struct {
	now      func() time.Time
	log      *slog.Logger
	deadline time.Duration
	retry    time.Duration
	cache    *Cache
	hosts    *hostsFile
	routes   []route    // longest domain first; the default route ("." ) last
	links    linkRoutes // routes from the config plus links' DNS servers (links.go)
	metrics  *metrics
	flight   singleflight.Group
	bufs     sync.Pool // of *[]byte, for answers in wire form
	onHealth func(error)

	mu      sync.Mutex
	healthy bool // the last query that needed an upstream got an answer
	known   bool // healthy has been set
	lastErr error
}

type route struct {
	domain string // lower-case FQDN, "." for the default
	ups    []*upstreamState
}

type upstreamState struct {
	ex *exchanger

	mu        sync.Mutex
	downUntil time.Time
	lastErr   error
	lastRTT   time.Duration
}

// New checks the options and builds a Resolver.
func New(o Options) (*Resolver, error) {
	if o.Clock == nil {
		o.Clock = service.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Timeout = orDefault(o.Timeout, DefaultTimeout)
	o.Deadline = orDefault(o.Deadline, DefaultDeadline)
	o.RetryAfter = orDefault(o.RetryAfter, DefaultRetryAfter)
	o.MaxTTL = orDefault(o.MaxTTL, DefaultMaxTTL)
	o.NegativeTTL = orDefault(o.NegativeTTL, DefaultNegativeTTL)
	switch {
	case o.CacheSize == 0:
		o.CacheSize = DefaultCacheSize
	case o.CacheSize < 0:
		o.CacheSize = 0
	}
	r := &Resolver{
		now:      o.Clock.Now,
		log:      o.Logger,
		deadline: o.Deadline,
		retry:    o.RetryAfter,
		onHealth: o.OnUpstreamHealth,
		cache:    NewCache(CacheOptions{Size: o.CacheSize, MaxTTL: o.MaxTTL, NegativeTTL: o.NegativeTTL, Clock: o.Clock}),
	}
	r.links.timeout = o.Timeout
	r.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if o.HostsPath != "" {
		r.hosts = &hostsFile{path: o.HostsPath, now: o.Clock.Now}
	}
	build := func(domain string, ups []Upstream) error {
		rt := route{domain: domain}
		for i, u := range ups {
			ex, err := newExchanger(u, o.Timeout, o.Clock.Now)
			if err != nil {
				if domain == "." {
					return fmt.Errorf("upstreams[%d]: %w", i, err)
				}
				return fmt.Errorf("domains[%s][%d]: %w", domain, i, err)
			}
			rt.ups = append(rt.ups, &upstreamState{ex: ex})
		}
		r.routes = append(r.routes, rt)
		return nil
	}
	domains := make([]string, 0, len(o.Domains))
	for d := range o.Domains {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		fq := dns.Fqdn(strings.ToLower(strings.TrimPrefix(d, ".")))
		if _, ok := dns.IsDomainName(fq); !ok || fq == "." {
			return nil, fmt.Errorf("domains: %q is not a domain name", d)
		}
		if len(o.Domains[d]) == 0 {
			return nil, fmt.Errorf("domains[%s]: no upstreams", d)
		}
		if err := build(fq, o.Domains[d]); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(r.routes, func(i, j int) bool {
		return dns.CountLabel(r.routes[i].domain) > dns.CountLabel(r.routes[j].domain)
	})
	if err := build(".", o.Upstreams); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Metrics, r.cache)
	if err != nil {
		return nil, fmt.Errorf("register dns metrics: %w", err)
	}
	r.metrics = m
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close drops the idle upstream connections. The resolver stays usable.
func (r *Resolver) Close() {
	for _, rt := range r.table() {
		for _, u := range rt.ups {
			u.ex.close()
		}
	}
}

// Flush empties the cache and returns how many answers it held.
func (r *Resolver) Flush() int { return r.cache.Flush() }

// ServeDNS answers one query received by a dns.Server.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	proto := "udp"
	if a := w.LocalAddr(); a != nil && a.Network() != "udp" {
		proto = "tcp"
	}
	r.metrics.queries.WithLabelValues(proto).Inc()
	if r.serveCached(w, q, proto) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.deadline)
	defer cancel()
	resp, _ := r.Resolve(ctx, q)
	if proto == "udp" {
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = udpLimit(int(opt.UDPSize()))
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("write dns response", "client", w.RemoteAddr(), "err", err)
	}
}

// serveCached writes the cached answer to q straight from its wire form
// (no unpacking, copying or packing) and reports whether it did. Anything
// unusual (hosts names, odd queries, an answer too large for the client)
// is left to Resolve.
func (r *Resolver) serveCached(w dns.ResponseWriter, q *dns.Msg, proto string) bool {
	if q.Response || q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 || len(q.Answer) != 0 || len(q.Ns) != 0 {
		return false
	}
	size := dns.MaxMsgSize
	if opt := q.IsEdns0(); opt != nil {
		if opt.Version() != 0 {
			return false
		}
		if proto == "udp" {
			size = udpLimit(int(opt.UDPSize()))
		}
	} else if proto == "udp" {
		size = dns.MinMsgSize
	}
	if t := r.hosts.get(); t != nil && (q.Question[0].Qtype == dns.TypePTR || t.Has(q.Question[0].Name)) {
		return false
	}
	bp := r.bufs.Get().(*[]byte)
	defer r.bufs.Put(bp)
	buf, ok := r.cache.AppendWire((*bp)[:0], q)
	*bp = buf[:0]
	if !ok || len(buf) > size {
		return false
	}
	r.metrics.cacheHits.Inc()
	r.metrics.responses.WithLabelValues(SourceCache, dns.RcodeToString[int(buf[3]&0x0f)]).Inc()
	if _, err := w.Write(buf); err != nil {
		r.log.Debug("write dns response", "client", w.RemoteAddr(), "err", err)
	}
	return true
}

// Query resolves name/qtype as a client with EDNS0 would, for the local
// API and tests.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, string) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(serverUDPSize, false)
	r.metrics.queries.WithLabelValues("api").Inc()
	return r.Resolve(ctx, q)
}

// Resolve answers q and says where the answer came from. It always
// returns a response to send: failures are SERVFAIL, FORMERR or NOTIMP.
// The response carries an OPT record exactly when q does.
func (r *Resolver) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, string) {
	resp, source := r.resolve(ctx, q)
	resp.Id = q.Id
	resp.Response = true
	resp.RecursionDesired = q.RecursionDesired
	resp.RecursionAvailable = true
	if len(q.Question) == 1 {
		resp.Question = []dns.Question{q.Question[0]}
	}
	resp.Extra = withoutOPT(resp.Extra)
	if opt := q.IsEdns0(); opt != nil {
		resp.SetEdns0(serverUDPSize, opt.Do())
	}
	r.metrics.responses.WithLabelValues(source, dns.RcodeToString[resp.Rcode]).Inc()
	return resp, source
}

func (r *Resolver) resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, string) {
	switch {
	case q.Response || q.Opcode != dns.OpcodeQuery:
		return reply(q, dns.RcodeNotImplemented), SourceLocal
	case len(q.Question) != 1:
		return reply(q, dns.RcodeFormatError), SourceLocal
	}
	if opt := q.IsEdns0(); opt != nil && opt.Version() != 0 {
		m := reply(q, dns.RcodeBadVers) // the extended rcode goes in the OPT record
		m.SetEdns0(serverUDPSize, opt.Do())
		return m, SourceLocal
	}
	switch q.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return reply(q, dns.RcodeRefused), SourceLocal
	}
	if t := r.hosts.get(); t != nil {
		if m := t.Answer(q); m != nil {
			return m, SourceHosts
		}
	}
	if m := r.cache.Get(q); m != nil {
		r.metrics.cacheHits.Inc()
		return m, SourceCache
	}
	r.metrics.cacheMisses.Inc()

	k, _ := keyOf(q)
	v, err, shared := r.flight.Do(k, func() (any, error) {
		return r.forward(ctx, q)
	})
	if err != nil {
		r.log.Debug("dns query failed", "name", q.Question[0].Name, "type", dns.TypeToString[q.Question[0].Qtype], "err", err)
		return reply(q, dns.RcodeServerFailure), SourceLocal
	}
	m := v.(*dns.Msg)
	if shared {
		m = m.Copy()
	}
	return m, SourceUpstream
}

func reply(q *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	return m
}

// routeOf returns the upstreams for name (lower-case FQDN).
func (r *Resolver) routeOf(name string) *route {
	routes := r.table()
	for i := range routes {
		rt := &routes[i]
		if rt.domain == "." || dns.IsSubDomain(rt.domain, name) {
			return rt
		}
	}
	return nil
}

// forward asks the upstreams for name q in order until one answers.
func (r *Resolver) forward(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	qq := q.Question[0]
	rt := r.routeOf(strings.ToLower(qq.Name))
	if rt == nil || len(rt.ups) == 0 {
		return nil, fmt.Errorf("%w: no upstream configured for %s", ErrNoUpstream, qq.Name)
	}
	up := new(dns.Msg)
	up.Id = dns.Id()
	up.RecursionDesired = true
	up.CheckingDisabled = q.CheckingDisabled
	up.Question = []dns.Question{qq}
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	up.SetEdns0(upstreamUDPSize, do)

	var lastErr error
	var servfail *dns.Msg
	for _, u := range r.order(rt.ups) {
		if ctx.Err() != nil {
			break
		}
		start := r.now()
		resp, err := u.ex.exchange(ctx, up)
		rtt := r.now().Sub(start)
		r.metrics.upstreamDur.WithLabelValues(u.ex.up.String()).Observe(rtt.Seconds())
		if err == nil && (resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused) {
			servfail = resp
			err = fmt.Errorf("query %s: answered %s", u.ex.up, dns.RcodeToString[resp.Rcode])
		}
		u.record(r.now(), rtt, err, r.retry)
		if err != nil {
			r.metrics.upstreamErr.WithLabelValues(u.ex.up.String()).Inc()
			lastErr = err
			continue
		}
		r.setHealth(nil)
		r.cache.Put(up, resp)
		return resp, nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	err := fmt.Errorf("%w for %s: %w", ErrNoUpstream, qq.Name, lastErr)
	if servfail != nil {
		// Upstreams were reachable and said SERVFAIL: the name is broken,
		// not the network. Pass it on without calling the upstreams down.
		r.setHealth(nil)
		return servfail, nil
	}
	r.setHealth(err)
	return nil, err
}

// Recheck asks the default upstreams for the root's NS records, outside
// the cache, so the upstream health verdict (OnUpstreamHealth) can recover
// while no client asks anything. It returns the failure, if any.
func (r *Resolver) Recheck(ctx context.Context) error {
	q := new(dns.Msg)
	q.SetQuestion(".", dns.TypeNS)
	_, err := r.forward(ctx, q)
	return err
}

// order returns ups with those that failed recently moved to the end.
func (r *Resolver) order(ups []*upstreamState) []*upstreamState {
	now := r.now()
	out := make([]*upstreamState, 0, len(ups))
	var down []*upstreamState
	for _, u := range ups {
		u.mu.Lock()
		isDown := now.Before(u.downUntil)
		u.mu.Unlock()
		if isDown {
			down = append(down, u)
		} else {
			out = append(out, u)
		}
	}
	return append(out, down...)
}

func (u *upstreamState) record(now time.Time, rtt time.Duration, err error, retry time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastRTT = rtt
	u.lastErr = err
	if err != nil {
		u.downUntil = now.Add(retry)
	} else {
		u.downUntil = time.Time{}
	}
}

func (r *Resolver) setHealth(err error) {
	r.mu.Lock()
	changed := !r.known || r.healthy != (err == nil)
	r.known, r.healthy, r.lastErr = true, err == nil, err
	r.mu.Unlock()
	if changed && r.onHealth != nil {
		r.onHealth(err)
	}
}

// UpstreamStatus is what the resolver knows about one upstream.
type UpstreamStatus struct {
	Upstream  string `json:"upstream"`
	Domain    string `json:"domain"` // "." for the default upstreams
	Up        bool   `json:"up"`     // the last attempt got an answer (or none was made yet)
	LastRTT   string `json:"last_rtt,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Stats is a snapshot of the resolver for status output.
type Stats struct {
	CacheEntries int              `json:"cache_entries"`
	HostsNames   int              `json:"hosts_names"`
	HostsError   string           `json:"hosts_error,omitempty"`
	Upstreams    []UpstreamStatus `json:"upstreams"`
	LastError    string           `json:"last_error,omitempty"`
}

// Stats returns a snapshot; cheap and safe for concurrent use.
func (r *Resolver) Stats() Stats {
	s := Stats{CacheEntries: r.cache.Len()}
	if r.hosts != nil {
		r.hosts.mu.Lock()
		s.HostsNames = r.hosts.table.Len()
		r.hosts.mu.Unlock()
		if err := r.hosts.lastErr(); err != nil {
			s.HostsError = err.Error()
		}
	}
	for _, rt := range slices.Backward(r.table()) {
		for _, u := range rt.ups {
			u.mu.Lock()
			us := UpstreamStatus{Upstream: u.ex.up.String(), Domain: rt.domain, Up: u.lastErr == nil}
			if u.lastRTT > 0 {
				us.LastRTT = u.lastRTT.Round(time.Microsecond).String()
			}
			if u.lastErr != nil {
				us.LastError = u.lastErr.Error()
			}
			u.mu.Unlock()
			s.Upstreams = append(s.Upstreams, us)
		}
	}
	r.mu.Lock()
	if r.lastErr != nil {
		s.LastError = r.lastErr.Error()
	}
	r.mu.Unlock()
	return s
}
