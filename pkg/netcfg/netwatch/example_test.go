package netwatch_test

import (
	"fmt"

	"github.com/hostd/hostd/pkg/netcfg/netwatch"
)

func ExampleLinkSpec_Check() {
	spec := netwatch.LinkSpec{
		Name:      "eth0",
		State:     "up",
		Addresses: []string{"192.0.2.10/24", "192.0.2.11"},
		Routes:    []netwatch.RouteSpec{{To: "default"}},
	}
	for _, p := range spec.Check() {
		fmt.Printf("%s: %s\n", p.Field, p.Msg)
	}
	// Output:
	// addresses[1]: address "192.0.2.11": want CIDR like 192.0.2.10/24
	// routes[0]: a default route needs a gateway (via)
}
