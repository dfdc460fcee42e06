package resolver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

func question(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	return q
}

func answer(t *testing.T, q *dns.Msg, rcode int, rrs ...string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("rr %q: %v", s, err)
		}
		if _, ok := rr.(*dns.SOA); ok {
			m.Ns = append(m.Ns, rr)
		} else {
			m.Answer = append(m.Answer, rr)
		}
	}
	return m
}

func TestCacheTTL(t *testing.T) {
	soa := "hostd.test. 3600 IN SOA ns.hostd.test. admin.hostd.test. 1 7200 900 1209600 20"
	tests := []struct {
		name    string
		rcode   int
		rrs     []string
		keepFor time.Duration // still cached just before this, gone at it
		ttlAt10 uint32        // TTL of the first answer 10s after storing
	}{
		{"positive uses the smallest ttl", dns.RcodeSuccess, []string{"a.hostd.test. 300 IN A 192.0.2.1", "a.hostd.test. 120 IN A 192.0.2.2"}, 120 * time.Second, 290},
		{"max ttl caps", dns.RcodeSuccess, []string{"a.hostd.test. 999999 IN A 192.0.2.1"}, time.Hour, 999989},
		{"nxdomain uses the soa minimum", dns.RcodeNameError, []string{soa}, 20 * time.Second, 0},
		{"nodata without soa uses negative ttl", dns.RcodeSuccess, nil, 30 * time.Second, 0},
		{"ttl 0 is not cached", dns.RcodeSuccess, []string{"a.hostd.test. 0 IN A 192.0.2.1"}, 0, 0},
		{"servfail is not cached", dns.RcodeServerFailure, nil, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			c := resolver.NewCache(resolver.CacheOptions{Size: 10, MaxTTL: time.Hour, NegativeTTL: 30 * time.Second, Clock: clock})
			q := question("a.hostd.test", dns.TypeA)
			c.Put(q, answer(t, q, tc.rcode, tc.rrs...))
			if tc.keepFor == 0 {
				if c.Len() != 0 {
					t.Fatalf("cached, want not cached")
				}
				return
			}
			clock.Advance(10 * time.Second)
			q.Id = 4242
			got := c.Get(q)
			if got == nil {
				t.Fatalf("not cached after 10s")
			}
			if got.Id != 4242 {
				t.Errorf("id = %d, want the query's 4242", got.Id)
			}
			if len(got.Answer) > 0 && got.Answer[0].Header().Ttl != tc.ttlAt10 {
				t.Errorf("ttl after 10s = %d, want %d", got.Answer[0].Header().Ttl, tc.ttlAt10)
			}
			clock.Advance(tc.keepFor - 10*time.Second - time.Millisecond)
			if c.Get(q) == nil {
				t.Errorf("gone before %s", tc.keepFor)
			}
			clock.Advance(time.Millisecond)
			if c.Get(q) != nil {
				t.Errorf("still served at %s, beyond its ttl", tc.keepFor)
			}
		})
	}
}

func TestCacheSizeBound(t *testing.T) {
	c := resolver.NewCache(resolver.CacheOptions{Size: 3, MaxTTL: time.Hour, Clock: newFakeClock()})
	put := func(i int) {
		q := question(fmt.Sprintf("n%d.hostd.test", i), dns.TypeA)
		c.Put(q, answer(t, q, dns.RcodeSuccess, fmt.Sprintf("n%d.hostd.test. 300 IN A 192.0.2.%d", i, i)))
	}
	has := func(i int) bool { return c.Get(question(fmt.Sprintf("n%d.hostd.test", i), dns.TypeA)) != nil }
	put(1)
	put(2)
	put(3)
	has(1) // 1 is now the most recently used; 2 the least
	put(4)
	if c.Len() != 3 {
		t.Errorf("len = %d, want the bound 3", c.Len())
	}
	for i, want := range map[int]bool{1: true, 2: false, 3: true, 4: true} {
		if has(i) != want {
			t.Errorf("n%d cached = %v, want %v", i, !want, want)
		}
	}
}

func TestCacheKeysOnCaseAndDO(t *testing.T) {
	c := resolver.NewCache(resolver.CacheOptions{Size: 10, MaxTTL: time.Hour, Clock: newFakeClock()})
	q := question("Mixed.HOSTD.test", dns.TypeA)
	c.Put(q, answer(t, q, dns.RcodeSuccess, "mixed.hostd.test. 300 IN A 192.0.2.1"))
	if c.Get(question("mixed.hostd.test", dns.TypeA)) == nil {
		t.Errorf("lower-case query missed an entry stored in mixed case")
	}
	if c.Get(question("mixed.hostd.test", dns.TypeAAAA)) != nil {
		t.Errorf("AAAA query hit an A entry")
	}
	do := question("mixed.hostd.test", dns.TypeA)
	do.SetEdns0(1232, true)
	if c.Get(do) != nil {
		t.Errorf("DNSSEC-OK query hit an entry stored without DO")
	}
}

func ExampleCache() {
	c := resolver.NewCache(resolver.CacheOptions{Size: 100, MaxTTL: time.Hour, NegativeTTL: time.Minute})
	q := new(dns.Msg)
	q.SetQuestion("www.example.org.", dns.TypeA)
	resp := new(dns.Msg)
	resp.SetReply(q)
	rr, _ := dns.NewRR("www.example.org. 300 IN A 192.0.2.1")
	resp.Answer = append(resp.Answer, rr)
	c.Put(q, resp)
	fmt.Println(c.Get(q).Answer[0].(*dns.A).A)
	// Output: 192.0.2.1
}

func TestCacheAppendWire(t *testing.T) {
	clock := newFakeClock()
	c := resolver.NewCache(resolver.CacheOptions{Size: 10, MaxTTL: time.Hour, NegativeTTL: time.Minute, Clock: clock})
	stored := question("www.hostd.test", dns.TypeCNAME)
	c.Put(stored, answer(t, stored, dns.RcodeSuccess, "www.hostd.test. 300 IN CNAME web.hostd.test."))
	clock.Advance(100 * time.Second)

	tests := []struct {
		name string
		q    func() *dns.Msg
		opt  bool
		do   bool
		rd   bool
	}{
		{"plain, mixed case", func() *dns.Msg { q := question("WwW.HoStD.tEsT", dns.TypeCNAME); return q }, false, false, true},
		{"no recursion desired", func() *dns.Msg { q := question("www.hostd.test", dns.TypeCNAME); q.RecursionDesired = false; return q }, false, false, false},
		{"edns", func() *dns.Msg { q := question("www.hostd.test", dns.TypeCNAME); q.SetEdns0(4096, false); return q }, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q()
			q.Id = 777
			b, ok := c.AppendWire([]byte{0xAA}, q)
			if !ok {
				t.Fatal("not cached")
			}
			if b[0] != 0xAA {
				t.Fatal("prefix overwritten")
			}
			m := new(dns.Msg)
			if err := m.Unpack(b[1:]); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			if m.Id != 777 || !m.Response || !m.RecursionAvailable || m.RecursionDesired != tc.rd {
				t.Errorf("header = %+v", m.MsgHdr)
			}
			if m.Question[0].Name != q.Question[0].Name {
				t.Errorf("question name %q, want the client's %q", m.Question[0].Name, q.Question[0].Name)
			}
			if got := m.Answer[0].Header().Ttl; got != 200 {
				t.Errorf("ttl = %d, want 300 aged by 100s", got)
			}
			if (m.IsEdns0() != nil) != tc.opt {
				t.Errorf("OPT present = %v, want %v", m.IsEdns0() != nil, tc.opt)
			}
		})
	}
	if _, ok := c.AppendWire(nil, question("other.hostd.test", dns.TypeA)); ok {
		t.Errorf("hit for a name never stored")
	}
}

func TestServeWireMatchesResolve(t *testing.T) {
	up := startFixedUpstream(t)
	hosts := t.TempDir() + "/hosts"
	writeFile(t, hosts, "192.0.2.7 nas\n")
	// A fixed clock: both paths must age TTLs alike.
	clock := newFakeClock()
	r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{{Address: up}}, HostsPath: hosts, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	warm := question("www.hostd.test", dns.TypeA)
	if resp, src := r.Resolve(context.Background(), warm); resp.Rcode != dns.RcodeSuccess || src != resolver.SourceUpstream {
		t.Fatalf("warm-up: %s from %s", dns.RcodeToString[resp.Rcode], src)
	}
	clock.Advance(5 * time.Second)

	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		q    func() *dns.Msg
		udp  bool
		hit  bool
	}{
		{"cached", func() *dns.Msg { return question("www.hostd.test", dns.TypeA) }, true, true},
		{"cached, other case, edns", func() *dns.Msg { q := question("WWW.hostd.TEST", dns.TypeA); q.SetEdns0(1232, false); return q }, true, true},
		{"not cached", func() *dns.Msg { return question("other.hostd.test", dns.TypeA) }, true, false},
		{"hosts name", func() *dns.Msg { return question("nas", dns.TypeA) }, true, false},
		{"edns version 1", func() *dns.Msg {
			q := question("www.hostd.test", dns.TypeA)
			q.SetEdns0(1232, false)
			q.IsEdns0().SetVersion(1)
			return q
		}, true, false},
		{"a response", func() *dns.Msg { q := question("www.hostd.test", dns.TypeA); q.Response = true; return q }, true, false},
		{"notify", func() *dns.Msg { q := new(dns.Msg); q.SetNotify("hostd.test."); return q }, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q()
			resp, ok := r.ServeWire(nil, pack(q), tc.udp)
			if ok != tc.hit {
				t.Fatalf("answered from the wire path = %v, want %v", ok, tc.hit)
			}
			if !ok {
				return
			}
			m := new(dns.Msg)
			if err := m.Unpack(resp); err != nil {
				t.Fatal(err)
			}
			// Names compare without letter case: the wire path writes the
			// client's spelling where the answer's owner name points.
			want, _ := r.Resolve(context.Background(), q)
			if m.Id != want.Id || m.Rcode != want.Rcode || m.Question[0] != want.Question[0] || len(m.Answer) != len(want.Answer) ||
				!strings.EqualFold(m.Answer[0].String(), want.Answer[0].String()) || (m.IsEdns0() == nil) != (want.IsEdns0() == nil) || m.RecursionAvailable != want.RecursionAvailable {
				t.Errorf("wire answer\n%v\ndiffers from Resolve's\n%v", m, want)
			}
		})
	}
}
