package resolver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

func TestResolverForwardsAndCaches(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{
		Addresses:   map[string]string{"www.hostd.test": "192.0.2.10"},
		HostRecords: []string{"db.hostd.test,192.0.2.20,2001:db8::20"},
	})
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}})

	tests := []struct {
		name, qtype string
		want        []string
	}{
		{"www.hostd.test", "A", []string{"192.0.2.10"}},
		{"db.hostd.test", "A", []string{"192.0.2.20"}},
		{"db.hostd.test", "AAAA", []string{"2001:db8::20"}},
		{"www.hostd.test", "A", []string{"192.0.2.10"}}, // second time: from the cache
		{"db.hostd.test", "AAAA", []string{"2001:db8::20"}},
	}
	for _, tc := range tests {
		for _, proto := range []string{"+notcp", "+tcp"} {
			got := dig(t, s.Addr, proto, tc.name, tc.qtype)
			if !slices.Equal(got, tc.want) {
				t.Errorf("dig %s %s %s = %q, want %q", proto, tc.name, tc.qtype, got, tc.want)
			}
		}
	}
	if n := up.Queries("www.hostd.test"); n != 1 {
		t.Errorf("dnsmasq saw %d queries for www.hostd.test, want 1 (the rest from the cache)\n%s", n, up.Log())
	}
	// 10 digs, 3 distinct questions: 3 misses, 7 hits.
	if hits, misses := s.counter(t, "hostd_netcfg_dns_cache_hits_total"), s.counter(t, "hostd_netcfg_dns_cache_misses_total"); hits != 7 || misses != 3 {
		t.Errorf("cache hits/misses = %v/%v, want 7/3", hits, misses)
	}
	if n := s.Flush(); n != 3 {
		t.Errorf("flush removed %d entries, want 3", n)
	}
	dig(t, s.Addr, "www.hostd.test", "A")
	if n := up.Queries("www.hostd.test"); n != 2 {
		t.Errorf("after flush dnsmasq saw %d queries for www.hostd.test, want 2", n)
	}
}

func TestResolverNegativeAnswers(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{
		Local:       []string{"hostd.test"},
		HostRecords: []string{"v4only.hostd.test,192.0.2.1"},
	})
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}})
	tests := []struct{ name, qtype, status string }{
		{"nosuch.hostd.test", "A", "NXDOMAIN"},
		{"v4only.hostd.test", "AAAA", "NOERROR"}, // NODATA
	}
	for _, tc := range tests {
		for range 3 {
			out := digRaw(t, s.Addr, tc.name, tc.qtype)
			if !strings.Contains(out, "status: "+tc.status) || !strings.Contains(out, "ANSWER: 0,") {
				t.Fatalf("%s %s: want %s without answers, got\n%s", tc.name, tc.qtype, tc.status, out)
			}
		}
		if n := up.Queries(tc.name); n != 1 {
			t.Errorf("dnsmasq saw %d queries for %s, want 1 (negative answer cached)", n, tc.name)
		}
	}
}

func TestResolverSplitRouting(t *testing.T) {
	public := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"corp.example": "192.0.2.66", "www.hostd.test": "192.0.2.1"}})
	corp := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{ListenIP: "127.0.0.2", Addresses: map[string]string{"corp.example": "10.1.2.3"}})
	s := serve(t, resolver.Options{
		Upstreams: []resolver.Upstream{mustUpstream(t, public.Addr)},
		Domains:   map[string][]resolver.Upstream{"corp.example": {mustUpstream(t, corp.Addr)}},
	})
	tests := []struct{ name, want, upstream string }{
		{"corp.example", "10.1.2.3", "corp"},
		{"git.corp.example", "10.1.2.3", "corp"},
		{"www.hostd.test", "192.0.2.1", "public"},
	}
	for _, tc := range tests {
		got := dig(t, s.Addr, tc.name, "A")
		if !slices.Equal(got, []string{tc.want}) {
			t.Errorf("%s = %q, want %s from the %s upstream", tc.name, got, tc.want, tc.upstream)
		}
	}
	if n := public.Queries("git.corp.example") + public.Queries("corp.example"); n != 0 {
		t.Errorf("the public upstream saw %d queries for corp.example names, want 0", n)
	}
	if n := corp.Queries("www.hostd.test"); n != 0 {
		t.Errorf("the corp upstream saw %d queries for other names, want 0", n)
	}
}

func TestResolverDNSOverTLS(t *testing.T) {
	dot := startTLSUpstream(t, "dns.hostd.test", "192.0.2.53")
	good := resolver.Upstream{Protocol: "tls", Address: dot.Addr, ServerName: dot.Name, CAFile: dot.CAFile}
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{good}})
	for _, name := range []string{"secure.hostd.test", "a.hostd.test", "b.hostd.test"} {
		if got := dig(t, s.Addr, name, "A"); !slices.Equal(got, []string{"192.0.2.53"}) {
			t.Fatalf("%s over DoT got %q, want 192.0.2.53", name, got)
		}
	}
	if q, c := dot.Queries.Load(), dot.Conns.Load(); q != 3 || c != 1 {
		t.Errorf("DoT server saw %d queries on %d connections, want 3 on 1 (reused)", q, c)
	}

	tests := []struct {
		name string
		up   resolver.Upstream
	}{
		{"wrong server name", resolver.Upstream{Protocol: "tls", Address: dot.Addr, ServerName: "other.hostd.test", CAFile: dot.CAFile}},
		{"untrusted CA", resolver.Upstream{Protocol: "tls", Address: dot.Addr, ServerName: dot.Name}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := dot.Queries.Load()
			r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{tc.up}})
			if err != nil {
				t.Fatal(err)
			}
			resp, src := r.Query(context.Background(), "secure.hostd.test", dns.TypeA)
			if resp.Rcode != dns.RcodeServerFailure || src != resolver.SourceLocal {
				t.Errorf("got %s from %s, want SERVFAIL", dns.RcodeToString[resp.Rcode], src)
			}
			if st := r.Stats(); len(st.Upstreams) != 1 || !strings.Contains(st.Upstreams[0].LastError, "certificate") {
				t.Errorf("upstream error = %+v, want a certificate error", st.Upstreams)
			}
			if dot.Queries.Load() != before {
				t.Errorf("the DoT server answered a client that should have refused its certificate")
			}
		})
	}
}

func TestResolverFailover(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "192.0.2.1"}})
	clock := newFakeClock()
	r, err := resolver.New(resolver.Options{
		Upstreams: []resolver.Upstream{mustUpstream(t, closedUDPPort(t)), mustUpstream(t, up.Addr)},
		Clock:     clock,
		CacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		resp, src := r.Query(context.Background(), "www.hostd.test", dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || src != resolver.SourceUpstream || len(resp.Answer) != 1 {
			t.Fatalf("query %d: got %s from %s", i, dns.RcodeToString[resp.Rcode], src)
		}
	}
	st := r.Stats()
	if st.Upstreams[0].Up || !st.Upstreams[1].Up {
		t.Errorf("upstream status = %+v, want the first down, the second up", st.Upstreams)
	}
}

func TestResolverAllUpstreamsDown(t *testing.T) {
	var mu sync.Mutex
	var health []error
	r, err := resolver.New(resolver.Options{
		Upstreams: []resolver.Upstream{mustUpstream(t, closedUDPPort(t)), mustUpstream(t, "tcp://"+closedUDPPort(t))},
		// Generous limits: a refused port must fail long before them.
		Timeout:  20 * time.Second,
		Deadline: 60 * time.Second,
		OnUpstreamHealth: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			health = append(health, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, src := r.Query(context.Background(), "www.hostd.test", dns.TypeA)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("SERVFAIL took %s with both upstreams refusing, want well under the 20s timeout", took)
	}
	if resp.Rcode != dns.RcodeServerFailure || src != resolver.SourceLocal {
		t.Errorf("got %s from %s, want SERVFAIL from local", dns.RcodeToString[resp.Rcode], src)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(health) != 1 || !errors.Is(health[0], resolver.ErrNoUpstream) {
		t.Errorf("health reports = %v, want one ErrNoUpstream", health)
	}
}

func TestResolverHostsFile(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"nas.lan": "192.0.2.99"}})
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n192.0.2.5 nas.lan nas # the NAS\n2001:db8::5 nas.lan\n"), 0o644)
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}, HostsPath: hosts})
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"nas.lan", "A"}, []string{"192.0.2.5"}},
		{[]string{"NAS.lan", "AAAA"}, []string{"2001:db8::5"}},
		{[]string{"localhost", "AAAA"}, nil}, // known name, no such address: NODATA, not forwarded
		{[]string{"-x", "192.0.2.5"}, []string{"nas.lan.", "nas."}},
	}
	for _, tc := range tests {
		if got := dig(t, s.Addr, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("dig %v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if n := up.Queries("nas.lan") + up.Queries("localhost"); n != 0 {
		t.Errorf("upstream saw %d queries for names in the hosts file, want 0", n)
	}
}

func TestResolverTruncationAndEDNS(t *testing.T) {
	var txt []string
	for i := range 12 {
		txt = append(txt, "big.hostd.test,"+strings.Repeat(string(rune('a'+i)), 200))
	}
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{TXT: append(txt, "small.hostd.test,hello")})
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}})

	tests := []struct {
		name      string
		args      []string
		truncated bool
		answers   int
		opt       bool
	}{
		{"udp without edns is cut to 512 bytes", []string{"+noedns", "+notcp", "+ignore"}, true, -1, false},
		{"tcp gets everything", []string{"+tcp"}, false, 12, true},
		{"udp with a large edns buffer is cut to 1232 bytes", []string{"+bufsize=4096", "+notcp", "+ignore"}, true, -1, true},
		{"udp with edns gets a small answer whole", []string{"+bufsize=4096", "+notcp", "small.hostd.test"}, false, 1, true},
		{"dig retries truncated udp over tcp", []string{"+noedns"}, false, 12, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !strings.HasSuffix(args[len(args)-1], ".test") {
				args = append(args, "big.hostd.test")
			}
			out := digRaw(t, s.Addr, append(args, "TXT")...)
			if got := strings.Contains(flagsLine(out), " tc"); got != tc.truncated {
				t.Errorf("truncated = %v, want %v\n%s", got, tc.truncated, out)
			}
			if tc.answers >= 0 && strings.Count(out, "\tTXT\t") != tc.answers {
				t.Errorf("got %d TXT answers, want %d\n%s", strings.Count(out, "\tTXT\t"), tc.answers, out)
			}
			if got := strings.Contains(out, "OPT PSEUDOSECTION"); got != tc.opt {
				t.Errorf("response has OPT = %v, want %v\n%s", got, tc.opt, out)
			}
		})
	}
}

// flagsLine is dig's ";; flags: ..." line.
func flagsLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, ";; flags:") {
			return l
		}
	}
	return ""
}

func TestResolverRejectsOddQueries(t *testing.T) {
	r, err := resolver.New(resolver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	two := new(dns.Msg)
	two.SetQuestion("a.hostd.test.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	notify := new(dns.Msg)
	notify.SetNotify("hostd.test.")
	axfr := new(dns.Msg)
	axfr.SetAxfr("hostd.test.")
	badVers := new(dns.Msg)
	badVers.SetQuestion("a.hostd.test.", dns.TypeA)
	badVers.SetEdns0(1232, false)
	badVers.IsEdns0().SetVersion(1)
	none := new(dns.Msg)
	none.SetQuestion("a.hostd.test.", dns.TypeA)

	tests := []struct {
		name  string
		q     *dns.Msg
		rcode int
	}{
		{"two questions", two, dns.RcodeFormatError},
		{"notify", notify, dns.RcodeNotImplemented},
		{"zone transfer", axfr, dns.RcodeRefused},
		{"edns version 1", badVers, dns.RcodeBadVers},
		{"no upstreams", none, dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := r.Resolve(context.Background(), tc.q)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if _, err := resp.Pack(); err != nil {
				t.Errorf("response does not pack: %v", err)
			}
		})
	}
}

func TestListenPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()
	_, err = resolver.Listen(context.Background(), addr)
	if err == nil {
		t.Fatalf("listen on %s in use: no error", addr)
	}
	for _, want := range []string{"listen for dns on udp " + addr, "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A TCP upstream that closes each connection after one answer: the
// resolver's idle connection is dead at the next query and is replaced.
func TestResolverReplacesClosedUpstreamConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, MaxTCPQueries: 1, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 9)})
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })

	r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, "tcp://"+l.Addr().String())}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, name := range []string{"a.hostd.test", "b.hostd.test", "c.hostd.test"} {
		resp, src := r.Query(context.Background(), name, dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || src != resolver.SourceUpstream || len(resp.Answer) != 1 {
			t.Errorf("%s: %s from %s, want an upstream answer", name, dns.RcodeToString[resp.Rcode], src)
		}
	}
}

func TestResolverServesIPv6(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "2001:db8::80"}})
	s := serveOn(t, "[::1]:0", resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}})
	for range 2 { // upstream, then the cache's wire path
		for _, proto := range []string{"+notcp", "+tcp"} {
			if got := dig(t, s.Addr, proto, "www.hostd.test", "AAAA"); !slices.Equal(got, []string{"2001:db8::80"}) {
				t.Errorf("dig %s over ipv6 = %q", proto, got)
			}
		}
	}
	if hits := s.counter(t, "hostd_netcfg_dns_cache_hits_total"); hits != 3 {
		t.Errorf("cache hits = %v, want 3", hits)
	}
}

// Garbage on the UDP socket gets FORMERR or nothing, and the server keeps
// answering.
func TestServerSurvivesGarbage(t *testing.T) {
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "192.0.2.1"}})
	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, up.Addr)}})
	c, err := net.Dial("udp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name    string
		packet  []byte
		formerr bool
	}{
		{"short", []byte{1, 2, 3}, false},
		{"header claiming a missing question", []byte{0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0}, true},
		{"a response", []byte{0xab, 0xcd, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"label past the end", []byte{0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 60, 'a'}, true},
		{"oversized", make([]byte, 9000), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Write(tc.packet); err != nil {
				t.Fatal(err)
			}
			if !tc.formerr {
				return
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if n != 12 || buf[0] != 0xab || buf[1] != 0xcd || buf[2]&0x80 == 0 || buf[3]&0x0f != dns.RcodeFormatError {
				t.Errorf("answer % x, want a FORMERR header for id abcd", buf[:n])
			}
		})
	}
	if got := dig(t, s.Addr, "www.hostd.test", "A"); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("after garbage: dig = %q", got)
	}
}

// An upstream that swallows queries costs one timeout, then the next one
// answers; with only silent upstreams the query fails at the deadline.
func TestResolverUpstreamTimeout(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	up := testenv.StartDnsmasq(t, testenv.DnsmasqOptions{Addresses: map[string]string{"www.hostd.test": "192.0.2.1"}})

	tests := []struct {
		name      string
		upstreams []string
		rcode     int
	}{
		{"failover after a timeout", []string{silent.LocalAddr().String(), up.Addr}, dns.RcodeSuccess},
		{"only silent upstreams", []string{silent.LocalAddr().String()}, dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ups []resolver.Upstream
			for _, u := range tc.upstreams {
				ups = append(ups, mustUpstream(t, u))
			}
			r, err := resolver.New(resolver.Options{Upstreams: ups, Timeout: 200 * time.Millisecond, Deadline: time.Second, CacheSize: -1})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, _ := r.Query(context.Background(), "www.hostd.test", dns.TypeA)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			// Bounded by the deadline, not by any default timeout.
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s with a 1s deadline", took)
			}
			if st := r.Stats(); st.Upstreams[0].Up || !strings.Contains(st.Upstreams[0].LastError, "timeout") {
				t.Errorf("silent upstream status = %+v, want down with a timeout", st.Upstreams[0])
			}
		})
	}
}

// A TCP or DNS-over-TLS upstream that accepts the connection and never
// answers (not even the TLS handshake) costs at most one attempt's
// timeout: the query gets SERVFAIL, and the upstream is marked down with
// the timeout.
func TestResolverStuckStreamUpstream(t *testing.T) {
	for _, proto := range []string{"tcp", "tls"} {
		t.Run(proto, func(t *testing.T) {
			peer := testenv.NewStuckPeer(t, "tcp", "127.0.0.1:0")
			u := resolver.Upstream{Protocol: proto, Address: peer.Addr}
			if proto == "tls" {
				u.ServerName = "dns.hostd.test"
			}
			r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{u}, Timeout: 200 * time.Millisecond, Deadline: time.Second, CacheSize: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			done := make(chan *dns.Msg, 1)
			go func() {
				resp, _ := r.Query(context.Background(), "www.hostd.test", dns.TypeA)
				done <- resp
			}()
			select {
			case resp := <-done:
				if resp.Rcode != dns.RcodeServerFailure {
					t.Errorf("rcode = %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
				}
			case <-time.After(30 * time.Second):
				t.Fatal("query to a stuck upstream did not return")
			}
			if peer.Accepted() == 0 {
				t.Error("the stuck upstream saw no connection")
			}
			if st := r.Stats(); st.Upstreams[0].Up || !strings.Contains(st.Upstreams[0].LastError, "timeout: no answer within 200ms") {
				t.Errorf("stuck upstream status = %+v, want down with a timeout", st.Upstreams[0])
			}
		})
	}
}

// An upstream that answers another question than the one asked (a forged
// or broken answer: another name, or a name of another length, which the
// cache's wire path would have spliced the client's name into) is an
// error for that upstream: the client gets SERVFAIL and nothing is cached.
func TestResolverRejectsAnswerForAnotherQuestion(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Question[0].Name = "victim.example."
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "victim.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(203, 0, 113, 66)}}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	defer srv.Shutdown()

	s := serve(t, resolver.Options{Upstreams: []resolver.Upstream{mustUpstream(t, pc.LocalAddr().String())}})
	if got := digRaw(t, s.Addr, "www.hostd.test", "A"); !strings.Contains(got, "SERVFAIL") {
		t.Errorf("answer for another question passed on: %s", got)
	}
	if n := s.Stats().CacheEntries; n != 0 {
		t.Errorf("%d cache entries, want none", n)
	}
	if st := s.Stats().Upstreams[0]; !strings.Contains(st.LastError, "not for the question asked") {
		t.Errorf("upstream status %+v", st)
	}
}
