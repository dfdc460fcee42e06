package resolver

import (
	"container/list"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/internal/service"
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
	entries map[string]*list.Element // by key
	lru     *list.List               // of *cacheEntry, most recently used at the front
}

// CacheOptions bounds a Cache.
type CacheOptions struct {
	Size        int           // maximum number of entries; 0 disables the cache
	MaxTTL      time.Duration // longest time an answer is kept, whatever its TTL
	NegativeTTL time.Duration // time a negative answer without SOA is kept, and the cap for those with one
	Clock       service.Clock // nil: service.RealClock
}

// A cache key is the question in wire form: the name with ASCII letters
// lowered, then type, class and a flags byte (DO, CD). The wire path
// builds it from a packet without unpacking; keyOf from a message.
const (
	keyDO = 1 << 0
	keyCD = 1 << 1
)

func appendKey(dst, lowerName []byte, qtype, qclass uint16, do, cd bool) []byte {
	dst = append(dst, lowerName...)
	var flags byte
	if do {
		flags |= keyDO
	}
	if cd {
		flags |= keyCD
	}
	return append(dst, byte(qtype>>8), byte(qtype), byte(qclass>>8), byte(qclass), flags)
}

// keyOf returns the key of q, which must have one question.
func keyOf(q *dns.Msg) (string, bool) {
	if len(q.Question) != 1 {
		return "", false
	}
	var nb [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(q.Question[0].Name), nb[:], 0, nil, false)
	if err != nil {
		return "", false
	}
	lowerASCII(nb[:n])
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	qq := q.Question[0]
	return string(appendKey(make([]byte, 0, n+5), nb[:n], qq.Qtype, qq.Qclass, do, q.CheckingDisabled)), true
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

type cacheEntry struct {
	key     string
	wire    []byte   // packed answer without OPT record, TTLs as received
	ttlAt   []uint16 // offsets of every TTL field in wire
	ttls    []uint32 // the TTLs as received, in ttlAt order
	stored  time.Time
	expires time.Time
}

// NewCache returns an empty cache.
func NewCache(o CacheOptions) *Cache {
	if o.Clock == nil {
		o.Clock = service.RealClock{}
	}
	return &Cache{
		now:     o.Clock.Now,
		max:     o.Size,
		maxTTL:  o.MaxTTL,
		negTTL:  o.NegativeTTL,
		entries: make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// lookup returns the live entry for q and the time, or nil.
func (c *Cache) lookup(q *dns.Msg) (*cacheEntry, time.Time) {
	k, ok := keyOf(q)
	if !ok {
		return nil, time.Time{}
	}
	return c.lookupKey([]byte(k))
}

// lookupKey returns the live entry for a key and the time, or nil.
func (c *Cache) lookupKey(k []byte) (*cacheEntry, time.Time) {
	if c.max <= 0 {
		return nil, time.Time{}
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[string(k)] // no allocation for a map index
	if !ok {
		return nil, now
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, e.key)
		return nil, now
	}
	c.lru.MoveToFront(el)
	return e, now
}

// Get returns a copy of the cached answer to q with TTLs lowered by the
// time it spent in the cache, or nil. The copy carries q's ID.
func (c *Cache) Get(q *dns.Msg) *dns.Msg {
	e, now := c.lookup(q)
	if e == nil {
		return nil
	}
	buf := e.appendAged(make([]byte, 0, len(e.wire)), now)
	out := new(dns.Msg)
	if err := out.Unpack(buf); err != nil {
		return nil // cannot happen: the entry was packed by Put
	}
	out.Id = q.Id
	return out
}

// AppendWire appends the cached answer to q to dst in wire form, ready to
// send: q's ID and question name (with its letter case), RD as q has it,
// RA set, TTLs aged, and an OPT record (DO as q has it) when q has one.
// It reports false when nothing is cached for q.
func (c *Cache) AppendWire(dst []byte, q *dns.Msg) ([]byte, bool) {
	e, now := c.lookup(q)
	if e == nil {
		return dst, false
	}
	var nb [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(q.Question[0].Name), nb[:], 0, nil, false)
	if err != nil {
		return dst, false
	}
	wq := wireQuery{id: q.Id, rd: q.RecursionDesired, name: nb[:n]}
	if opt := q.IsEdns0(); opt != nil {
		wq.edns, wq.do = true, opt.Do()
	}
	return e.appendAnswer(dst, now, &wq), true
}

// appendAnswer appends the entry as the answer to wq.
func (e *cacheEntry) appendAnswer(dst []byte, now time.Time, wq *wireQuery) []byte {
	start := len(dst)
	dst = e.appendAged(dst, now)
	msg := dst[start:]
	binary.BigEndian.PutUint16(msg[0:], wq.id)
	msg[2] = msg[2]&^0x01 | boolBit(wq.rd) // RD
	msg[3] |= 0x80                         // RA
	// The same name as stored, maybe in other letter case: same length.
	copy(msg[12:], wq.name)
	if wq.edns {
		var flags byte
		if wq.do {
			flags = 0x80
		}
		// Root name, type OPT, class = our UDP size, TTL = ext-rcode 0,
		// version 0, flags; no options.
		dst = append(dst, 0, 0, 41, byte(serverUDPSize>>8), byte(serverUDPSize&0xff), 0, 0, flags, 0, 0, 0)
		msg = dst[start:]
		binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1) // ARCOUNT
	}
	return dst
}

func boolBit(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendAged appends the entry with TTLs lowered by its age at now.
func (e *cacheEntry) appendAged(dst []byte, now time.Time) []byte {
	start := len(dst)
	dst = append(dst, e.wire...)
	age := uint32(now.Sub(e.stored) / time.Second)
	for i, at := range e.ttlAt {
		ttl := e.ttls[i]
		if ttl > age {
			ttl -= age
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(dst[start+int(at):], ttl)
	}
	return dst
}

// Put stores resp as the answer to q if it may be cached.
func (c *Cache) Put(q, resp *dns.Msg) {
	k, ok := keyOf(q)
	if !ok || c.max <= 0 || resp.Truncated || !sameQuestion(q, resp) {
		return
	}
	ttl, ok := c.ttlOf(resp)
	if !ok || ttl <= 0 {
		return
	}
	m := resp.Copy()
	m.Extra = withoutOPT(m.Extra)
	m.Compress = true
	wire, err := m.Pack()
	if err != nil || len(wire) > dns.MaxMsgSize {
		return
	}
	ttlAt, err := ttlOffsets(wire)
	if err != nil {
		return
	}
	ttls := make([]uint32, len(ttlAt))
	for i, at := range ttlAt {
		ttls[i] = binary.BigEndian.Uint32(wire[at:])
	}
	now := c.now()
	e := &cacheEntry{key: k, wire: wire, ttlAt: ttlAt, ttls: ttls, stored: now, expires: now.Add(ttl)}
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

// sameQuestion reports whether resp answers the one question of q (the
// name compared without regard to ASCII case). An answer to anything else
// is never cached: it would be served for q, and the wire path copies q's
// name over the stored one, which must have its length.
func sameQuestion(q, resp *dns.Msg) bool {
	if len(q.Question) != 1 || len(resp.Question) != 1 {
		return false
	}
	a, b := q.Question[0], resp.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
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
	c.entries = make(map[string]*list.Element)
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

// ttlOffsets walks a packed message and returns the offset of the TTL of
// every resource record (OPT records excluded).
func ttlOffsets(m []byte) ([]uint16, error) {
	if len(m) < 12 {
		return nil, errors.New("short message")
	}
	be := binary.BigEndian
	qd := int(be.Uint16(m[4:]))
	rrs := int(be.Uint16(m[6:])) + int(be.Uint16(m[8:])) + int(be.Uint16(m[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(m, off); err != nil {
			return nil, err
		}
		off += 4
	}
	out := make([]uint16, 0, rrs)
	for range rrs {
		if off, err = skipName(m, off); err != nil {
			return nil, err
		}
		if off+10 > len(m) {
			return nil, errors.New("truncated record")
		}
		if be.Uint16(m[off:]) != dns.TypeOPT {
			out = append(out, uint16(off+4))
		}
		off += 10 + int(be.Uint16(m[off+8:]))
	}
	if off > len(m) {
		return nil, errors.New("truncated record data")
	}
	return out, nil
}

// skipName returns the offset just past the (possibly compressed) name
// at off.
func skipName(m []byte, off int) (int, error) {
	for {
		if off >= len(m) {
			return 0, errors.New("truncated name")
		}
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, errors.New("bad label")
		}
		off += l + 1
	}
}
