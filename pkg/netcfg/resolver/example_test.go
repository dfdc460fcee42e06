package resolver_test

import (
	"fmt"

	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

func ExampleParseUpstream() {
	for _, s := range []string{"1.1.1.1", "tcp://[2606:4700::1111]", "tls://1.1.1.1@cloudflare-dns.com", "tls://9.9.9.9:853#dns.quad9.net"} {
		u, err := resolver.ParseUpstream(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(u)
	}
	_, err := resolver.ParseUpstream("tls://1.1.1.1")
	fmt.Println(err)
	// Output:
	// udp://1.1.1.1:53
	// tcp://[2606:4700::1111]:53
	// tls://1.1.1.1:853@cloudflare-dns.com
	// tls://9.9.9.9:853@dns.quad9.net
	// upstream "tls://1.1.1.1": dns-over-tls needs a server name to verify (tls://IP@NAME)
}
