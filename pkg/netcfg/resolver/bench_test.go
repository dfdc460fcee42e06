package resolver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

// BenchmarkResolveCached measures answering from the cache in process:
// the resolver's own cost per query without sockets.
func BenchmarkResolveCached(b *testing.B) {
	up := startFixedUpstream(b)
	r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{{Address: up}}})
	if err != nil {
		b.Fatal(err)
	}
	qs := make([]*dns.Msg, 256)
	for i := range qs {
		qs[i] = question(fmt.Sprintf("n%d.hostd.test", i), dns.TypeA)
		if resp, _ := r.Resolve(context.Background(), qs[i]); resp.Rcode != dns.RcodeSuccess {
			b.Fatalf("warm-up query %d: %s", i, dns.RcodeToString[resp.Rcode])
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			resp, src := r.Resolve(context.Background(), qs[i%len(qs)])
			if src != resolver.SourceCache || len(resp.Answer) != 1 {
				b.Errorf("got %s answer from %s for %s", dns.RcodeToString[resp.Rcode], src, qs[i%len(qs)].Question[0].Name)
				return
			}
			i++
		}
	})
}

// BenchmarkServeUDPCached measures a cached answer over loopback UDP,
// client included.
func BenchmarkServeUDPCached(b *testing.B) {
	up := startFixedUpstream(b)
	r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{{Address: up}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := resolver.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, r) }()
	defer func() { cancel(); <-done }()
	q := question("www.hostd.test", dns.TypeA)
	r.Resolve(context.Background(), q)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dns.Dial("udp", srv.Addr())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			q := question("www.hostd.test", dns.TypeA)
			if err := c.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.ReadMsg(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
