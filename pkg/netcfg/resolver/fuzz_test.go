package resolver_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// recorder is a dns.ResponseWriter that keeps what was written.
type recorder struct {
	network string
	msg     *dns.Msg
	size    int // bytes written with Write
}

func (r *recorder) LocalAddr() net.Addr {
	if r.network == "tcp" {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (r *recorder) RemoteAddr() net.Addr      { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353} }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	r.msg = m
	r.size = len(b)
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// FuzzHandler feeds arbitrary packets to the handler the way the server
// does: what does not unpack is dropped by the server before the handler;
// everything else must get one well-formed answer with the query's ID,
// small enough for a UDP client, without a panic.
func FuzzHandler(f *testing.F) {
	seeds := []func(m *dns.Msg){
		func(m *dns.Msg) { m.SetQuestion("www.hostd.test.", dns.TypeA) },
		func(m *dns.Msg) { m.SetQuestion("nas.", dns.TypeAAAA); m.SetEdns0(4096, true) },
		func(m *dns.Msg) { m.SetQuestion("1.2.0.192.in-addr.arpa.", dns.TypePTR) },
		func(m *dns.Msg) { m.SetQuestion("big.hostd.test.", dns.TypeTXT); m.SetEdns0(100, false) },
		func(m *dns.Msg) { m.SetNotify("hostd.test.") },
		func(m *dns.Msg) { m.SetAxfr("hostd.test.") },
		func(m *dns.Msg) { m.SetQuestion("a.", dns.TypeA); m.Question = append(m.Question, m.Question[0]) },
		func(m *dns.Msg) { m.SetQuestion("a.", dns.TypeA); m.SetEdns0(1232, false); m.IsEdns0().SetVersion(7) },
		func(m *dns.Msg) { m.SetQuestion("a.", dns.TypeA); m.Response = true },
		func(m *dns.Msg) {},
	}
	for _, s := range seeds {
		m := new(dns.Msg)
		s(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Add([]byte{0, 0}, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}, false)
	for _, p := range hostilePackets() {
		f.Add(p, false)
		f.Add(p, true)
	}

	hosts := f.TempDir() + "/hosts"
	writeFile(f, hosts, "192.0.2.1 nas nas.lan\n2001:db8::1 nas\n")
	up := startFixedUpstream(f)
	r, err := resolver.New(resolver.Options{
		Upstreams: []resolver.Upstream{{Address: up}},
		HostsPath: hosts,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		// The wire path first, as the UDP loop does with every packet.
		if resp, ok := r.ServeWire(nil, packet, !tcp); ok {
			m := new(dns.Msg)
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("wire answer does not unpack: %v", err)
			}
			if len(packet) < 2 || m.Id != uint16(packet[0])<<8|uint16(packet[1]) || !m.Response {
				t.Errorf("wire answer id %d, QR %v for packet % x", m.Id, m.Response, packet[:min(2, len(packet))])
			}
			if !tcp && len(resp) > 1232 {
				t.Errorf("wire answer of %d bytes over udp, more than the 1232 we allow", len(resp))
			}
		}
		q := new(dns.Msg)
		if err := q.Unpack(packet); err != nil {
			return
		}
		// Twice: the second answer may come from the cache's wire path.
		for range 2 {
			check(t, r, q, tcp)
		}
	})
}

// hostilePackets are queries built to hurt a parser: compression loops,
// counts far beyond the packet, truncation at every part, names and EDNS
// fields at and past their limits.
func hostilePackets() [][]byte {
	hdr := func(id uint16, flags uint16, qd, an, ns, ar uint16) []byte {
		return []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), byte(qd >> 8), byte(qd), byte(an >> 8), byte(an), byte(ns >> 8), byte(ns), byte(ar >> 8), byte(ar)}
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	a := []byte{0, 1, 0, 1} // type A, class IN
	label63 := append([]byte{63}, []byte(strings.Repeat("a", 63))...)
	opt := func(size uint16, version byte, rdlen uint16) []byte {
		return []byte{0, 0, 41, byte(size >> 8), byte(size), 0, version, 0x80, 0, byte(rdlen >> 8), byte(rdlen)}
	}
	return [][]byte{
		// A name that points at itself, and two that point at each other.
		cat(hdr(1, 0x0100, 1, 0, 0, 0), []byte{0xc0, 12}, a),
		cat(hdr(2, 0x0100, 1, 0, 0, 0), []byte{1, 'a', 0xc0, 14, 1, 'b', 0xc0, 12}, a),
		// A pointer past the end, and one into the header.
		cat(hdr(3, 0x0100, 1, 0, 0, 0), []byte{0xc3, 0xff}, a),
		cat(hdr(4, 0x0100, 1, 0, 0, 0), []byte{0xc0, 2}, a),
		// Counts far beyond what the packet holds.
		cat(hdr(5, 0x0100, 0xffff, 0xffff, 0xffff, 0xffff), []byte{1, 'a', 0}, a),
		cat(hdr(6, 0x0100, 1, 0, 0, 0xffff), []byte{1, 'a', 0}, a, opt(4096, 0, 0)),
		// Truncated: in the header, the name, the type, the OPT record.
		hdr(7, 0x0100, 1, 0, 0, 0)[:11],
		cat(hdr(8, 0x0100, 1, 0, 0, 0), []byte{5, 'a', 'b'}),
		cat(hdr(9, 0x0100, 1, 0, 0, 0), []byte{1, 'a', 0, 0}),
		cat(hdr(10, 0x0100, 1, 0, 0, 1), []byte{1, 'a', 0}, a, opt(4096, 0, 0)[:7]),
		// OPT data length past the end, and a name over 255 bytes.
		cat(hdr(11, 0x0100, 1, 0, 0, 1), []byte{1, 'a', 0}, a, opt(4096, 0, 0xffff)),
		cat(hdr(12, 0x0100, 1, 0, 0, 0), label63, label63, label63, label63, []byte{0}, a),
		// Reserved label types (0x40, 0x80).
		cat(hdr(13, 0x0100, 1, 0, 0, 0), []byte{0x41, 'a', 0}, a),
		cat(hdr(14, 0x0100, 1, 0, 0, 0), []byte{0x81, 'a', 0}, a),
		// EDNS sizes at the extremes, and version 1.
		cat(hdr(15, 0x0100, 1, 0, 0, 1), []byte{1, 'a', 0}, a, opt(65535, 0, 0)),
		cat(hdr(16, 0x0100, 1, 0, 0, 1), []byte{1, 'a', 0}, a, opt(0, 0, 0)),
		cat(hdr(17, 0x0100, 1, 0, 0, 1), []byte{1, 'a', 0}, a, opt(1232, 1, 0)),
		// Two OPT records; an OPT record as the question.
		cat(hdr(18, 0x0100, 1, 0, 0, 2), []byte{1, 'a', 0}, a, opt(4096, 0, 0), opt(512, 0, 0)),
		cat(hdr(19, 0x0100, 1, 0, 0, 0), []byte{0, 0, 41, 0, 1}),
		// A response (QR set) and an unknown opcode.
		cat(hdr(20, 0x8100, 1, 0, 0, 0), []byte{1, 'a', 0}, a),
		cat(hdr(21, 0x7900, 1, 0, 0, 0), []byte{1, 'a', 0}, a),
		// Trailing bytes after a plain query.
		cat(hdr(22, 0x0100, 1, 0, 0, 0), []byte{1, 'a', 0}, a, []byte{0xde, 0xad}),
		// The largest query the UDP loop reads.
		cat(hdr(23, 0x0100, 1, 0, 0, 0), []byte{1, 'a', 0}, a, make([]byte, 4096-12-7)),
	}
}

// check serves q once and checks the answer.
func check(t *testing.T, r *resolver.Resolver, q *dns.Msg, tcp bool) {
	t.Helper()
	w := &recorder{network: "udp"}
	if tcp {
		w.network = "tcp"
	}
	r.ServeDNS(w, q)
	if w.msg == nil {
		t.Fatal("no response written")
	}
	if w.msg.Id != q.Id || !w.msg.Response {
		t.Errorf("response id %d response=%v, want id %d and QR set", w.msg.Id, w.msg.Response, q.Id)
	}
	b, err := w.msg.Pack()
	if err != nil {
		t.Fatalf("response does not pack: %v\n%v", err, w.msg)
	}
	if w.size > len(b) {
		b = make([]byte, w.size) // raw answers may be packed less tightly
	}
	if !tcp {
		limit := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			limit = min(max(limit, int(opt.UDPSize())), 1232)
		}
		if len(b) > limit {
			t.Errorf("udp response is %d bytes, client accepts %d", len(b), limit)
		}
	}
}

// FuzzCache stores arbitrary upstream answers (whatever miekg/dns
// unpacks) for a query and serves them back through both cache paths:
// an answer for another question is never served, and whatever is served
// unpacks, carries the query's ID and question, and fits the UDP limit
// when served over UDP.
func FuzzCache(f *testing.F) {
	add := func(qname string, qtype uint16, edit func(q, m *dns.Msg)) {
		q := new(dns.Msg)
		q.SetQuestion(qname, qtype)
		m := new(dns.Msg)
		m.SetReply(q)
		edit(q, m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(qname, qtype, b)
	}
	a := func(name string, ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: []byte{192, 0, 2, 1}}
	}
	add("www.hostd.test.", dns.TypeA, func(q, m *dns.Msg) { m.Answer = []dns.RR{a("www.hostd.test.", 60)} })
	add("WWW.Hostd.Test.", dns.TypeA, func(q, m *dns.Msg) { m.Answer = []dns.RR{a("www.hostd.test.", 60)} })
	// A hostile upstream answers another question, a longer or shorter
	// name, or none at all.
	add("a.hostd.test.", dns.TypeA, func(q, m *dns.Msg) {
		m.Question[0].Name = "a-much-longer-name.hostd.test."
		m.Answer = []dns.RR{a("a-much-longer-name.hostd.test.", 60)}
	})
	add("a-much-longer-name.hostd.test.", dns.TypeA, func(q, m *dns.Msg) { m.Question[0].Name = "a." })
	add("a.hostd.test.", dns.TypeA, func(q, m *dns.Msg) { m.Question = nil; m.Answer = []dns.RR{a("a.hostd.test.", 60)} })
	add("a.hostd.test.", dns.TypeA, func(q, m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA })
	add("a.hostd.test.", dns.TypeA, func(q, m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	add("nx.hostd.test.", dns.TypeA, func(q, m *dns.Msg) {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "hostd.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300}, Ns: "ns.hostd.test.", Mbox: "h.hostd.test.", Minttl: 60}}
	})
	add("big.hostd.test.", dns.TypeTXT, func(q, m *dns.Msg) {
		for i := range 30 {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "big.hostd.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(i)}, Txt: []string{strings.Repeat("x", 200)}})
		}
	})

	c := resolver.NewCache(resolver.CacheOptions{Size: 16, MaxTTL: time.Hour, NegativeTTL: time.Minute})
	f.Fuzz(func(t *testing.T, qname string, qtype uint16, answer []byte) {
		if _, ok := dns.IsDomainName(qname); !ok || len(qname) > 200 {
			return
		}
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(qname), qtype)
		if _, err := q.Pack(); err != nil {
			return
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(answer); err != nil {
			return
		}
		c.Flush()
		c.Put(q, resp)
		for _, edns := range []bool{false, true} {
			qq := q.Copy()
			qq.Id = 0x4242
			if edns {
				qq.SetEdns0(1232, true)
			}
			if m := c.Get(qq); m != nil {
				checkCached(t, qq, m)
			}
			if b, ok := c.AppendWire(nil, qq); ok {
				m := new(dns.Msg)
				if err := m.Unpack(b); err != nil {
					t.Fatalf("wire answer does not unpack: %v", err)
				}
				checkCached(t, qq, m)
			}
		}
	})
}

func checkCached(t *testing.T, q, m *dns.Msg) {
	t.Helper()
	if m.Id != q.Id {
		t.Errorf("cached answer id %d, want %d", m.Id, q.Id)
	}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, q.Question[0].Name) ||
		m.Question[0].Qtype != q.Question[0].Qtype || m.Question[0].Qclass != q.Question[0].Qclass {
		t.Errorf("cached answer to %v is for %v", q.Question, m.Question)
	}
}
