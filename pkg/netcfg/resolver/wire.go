package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// wireQuery is what the cache's wire path needs from a query packet.
type wireQuery struct {
	id       uint16
	rd, cd   bool
	edns, do bool
	udpSize  int    // the client's EDNS0 buffer size, or 512
	name     []byte // the question name as sent (wire form)
	lower    []byte // the same, ASCII letters lowered
	qtype    uint16
	qclass   uint16
}

// parseWireQuery reads a plain query from a packet: one question whose
// name is not compressed, no answer or authority records, and at most an
// OPT record (EDNS version 0) as additional data. Anything else (it
// returns false) takes the full path.
func parseWireQuery(p []byte, lowerBuf []byte) (wireQuery, bool) {
	var q wireQuery
	be := binary.BigEndian
	if len(p) < 12+1+4 {
		return q, false
	}
	if p[2]&0x80 != 0 || p[2]&0x78 != 0 { // QR set, or opcode not QUERY
		return q, false
	}
	if be.Uint16(p[4:]) != 1 || be.Uint16(p[6:]) != 0 || be.Uint16(p[8:]) != 0 {
		return q, false
	}
	ar := be.Uint16(p[10:])
	if ar > 1 {
		return q, false
	}
	q.id = be.Uint16(p[0:])
	q.rd = p[2]&0x01 != 0
	q.cd = p[3]&0x10 != 0
	q.udpSize = dns.MinMsgSize
	off := 12
	for {
		if off >= len(p) {
			return q, false
		}
		l := int(p[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(p) || off+1+l-12 > 254 {
			return q, false // a pointer, a reserved label type, or too long
		}
		off += 1 + l
	}
	q.name = p[12:off]
	q.lower = append(lowerBuf[:0], q.name...)
	lowerASCII(q.lower)
	if off+4 > len(p) {
		return q, false
	}
	q.qtype = be.Uint16(p[off:])
	q.qclass = be.Uint16(p[off+2:])
	off += 4
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT:
		return q, false
	}
	if ar == 1 {
		// Root name, type OPT, class = UDP size, ext-rcode, version,
		// flags, rdlength, options.
		if off+11 > len(p) || p[off] != 0 || be.Uint16(p[off+1:]) != dns.TypeOPT {
			return q, false
		}
		if p[off+5] != 0 || p[off+6] != 0 { // extended rcode, version
			return q, false
		}
		q.edns = true
		q.do = p[off+7]&0x80 != 0
		q.udpSize = udpLimit(int(be.Uint16(p[off+3:])))
		off += 11 + int(be.Uint16(p[off+9:]))
	}
	if off != len(p) {
		return q, false // trailing bytes or options past the end
	}
	return q, true
}

// ServeWire answers a query packet from the cache without unpacking it,
// appending the answer to dst. It reports false when the packet is not a
// plain query, the name is in the hosts file, nothing is cached, or the
// answer is larger than a UDP client accepts (udp true): the caller then
// unpacks the packet and uses ServeDNS, which handles all of those.
func (r *Resolver) ServeWire(dst, packet []byte, udp bool) ([]byte, bool) {
	var lb [256]byte
	q, ok := parseWireQuery(packet, lb[:0])
	if !ok {
		return dst, false
	}
	if t := r.hosts.get(); t != nil && (q.qtype == dns.TypePTR || t.hasWire(q.lower)) {
		return dst, false
	}
	var kb [256 + 5]byte
	e, now := r.cache.lookupKey(appendKey(kb[:0], q.lower, q.qtype, q.qclass, q.do, q.cd))
	if e == nil {
		return dst, false
	}
	start := len(dst)
	dst = e.appendAnswer(dst, now, &q)
	if udp && len(dst)-start > q.udpSize {
		return dst[:start], false
	}
	proto := r.metrics.udp
	if !udp {
		proto = r.metrics.tcp
	}
	proto.Inc()
	r.metrics.cacheHits.Inc()
	r.metrics.cacheRcode(int(dst[start+3] & 0x0f)).Inc()
	return dst, true
}

// udpLimit is the largest UDP answer sent to a client that advertised an
// EDNS0 buffer of size bytes: at least 512, and at most our own 1232 (the
// DNS flag day 2020 size, which avoids IP fragmentation); larger answers
// are truncated and the client retries over TCP.
func udpLimit(size int) int {
	return min(max(size, dns.MinMsgSize), serverUDPSize)
}
