package netcfg_test

import (
	"fmt"

	"github.com/hostd/hostd/pkg/netcfg"
)

func ExampleParseQuery() {
	for _, q := range [][2]string{{"example.org", ""}, {"example.org", "aaaa"}, {"example.org", "BOGUS"}} {
		t, err := netcfg.ParseQuery(q[0], q[1])
		fmt.Println(t, err)
	}
	// Output:
	// 1 <nil>
	// 28 <nil>
	// 0 query: unknown record type "BOGUS"
}
