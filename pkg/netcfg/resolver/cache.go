package resolver

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Cache holds upstream answers until their TTL runs out. It is bounded
// by a number of entries and evicts the least recently used one first.
// Negative answers (NXDOMAIN and NODATA) are kept for the SOA minimum of
// the answer (RFC 2308), or for NegativeTTL when the answer has no SOA.
// Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	now     func() time.Time
	max     int
	maxTTL  time.Duration
	negTTL  time.Duration
	entries map[cacheKey]*list.Element
	lru     *list.List // of *cacheEntry, most recently used at the front
}

// CacheOptions bounds a Cache.
type CacheOptions struct {
	Size        int              // maximum number of entries; 0 disables the cache
	MaxTTL      time.Duration    // longest time an answer is kept, whatever its TTL
	NegativeTTL time.Duration    // time a negative answer without SOA is kept, and the cap for those with one
	Now         func() time.Time // clock; time.Now when nil
}

type cacheKey struct {
	name   string // lower case, fully qualified
	qtype  uint16
	qclass uint16
	do, cd bool
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // without OPT record, TTLs as received
	stored  time.Time
	expires time.Time
}

// NewCache returns an empty cache.
func NewCache(o CacheOptions) *Cache {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{
		now:     o.Now,
		max:     o.Size,
		maxTTL:  o.MaxTTL,
		negTTL:  o.NegativeTTL,
		entries: make(map[cacheKey]*list.Element),
		lru:     list.New(),
	}
}

func keyOf(q *dns.Msg) (cacheKey, bool) {
	if len(q.Question) != 1 {
		return cacheKey{}, false
	}
	k := cacheKey{
		name:   strings.ToLower(q.Question[0].Name),
		qtype:  q.Question[0].Qtype,
		qclass: q.Question[0].Qclass,
		cd:     q.CheckingDisabled,
	}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k, true
}

// Get returns a copy of the cached answer to q with TTLs lowered by the
// time it spent in the cache, or nil. The copy carries q's ID.
func (c *Cache) Get(q *dns.Msg) *dns.Msg {
	k, ok := keyOf(q)
	if !ok || c.max <= 0 {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	el, ok := c.entries[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	msg, stored := e.msg, e.stored
	c.mu.Unlock()

	out := msg.Copy()
	out.Id = q.Id
	age := uint32(now.Sub(stored) / time.Second)
	for _, sec := range [][]dns.RR{out.Answer, out.Ns, out.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return out
}

// Put stores resp as the answer to q if it may be cached.
func (c *Cache) Put(q, resp *dns.Msg) {
	k, ok := keyOf(q)
	if !ok || c.max <= 0 || resp.Truncated {
		return
	}
	ttl, ok := c.ttlOf(resp)
	if !ok || ttl <= 0 {
		return
	}
	m := resp.Copy()
	m.Extra = withoutOPT(m.Extra)
	now := c.now()
	e := &cacheEntry{key: k, msg: m, stored: now, expires: now.Add(ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// ttlOf says how long resp may be cached.
func (c *Cache) ttlOf(resp *dns.Msg) (time.Duration, bool) {
	switch {
	case resp.Rcode == dns.RcodeNameError, resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 0:
		ttl := c.negTTL
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				s := min(soa.Hdr.Ttl, soa.Minttl)
				ttl = min(ttl, time.Duration(s)*time.Second)
			}
		}
		return ttl, true
	case resp.Rcode == dns.RcodeSuccess:
		least := ^uint32(0)
		for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
			for _, rr := range sec {
				if rr.Header().Rrtype == dns.TypeOPT {
					continue
				}
				least = min(least, rr.Header().Ttl)
			}
		}
		ttl := time.Duration(least) * time.Second
		if c.maxTTL > 0 {
			ttl = min(ttl, c.maxTTL)
		}
		return ttl, true
	default:
		// SERVFAIL, REFUSED and the like describe the upstream, not the name.
		return 0, false
	}
}

// Len is the number of entries, including expired ones not yet evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Flush removes every entry and returns how many there were.
func (c *Cache) Flush() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.lru.Len()
	c.entries = make(map[cacheKey]*list.Element)
	c.lru.Init()
	return n
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}
