package resolver_test

import (
	"net"
	"testing"

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
