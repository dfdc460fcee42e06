package netcfg

import (
	"strings"
	"testing"
)

// FuzzSearchLine feeds arbitrary resolv.conf contents (the file hostd
// replaces may hold anything) to the search-line extraction: what it
// returns is written into the new resolv.conf, so it must be one line
// ("search" and the domains) or nothing.
func FuzzSearchLine(f *testing.F) {
	for _, s := range []string{
		"nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan example.org\n",
		"domain corp.example\nsearch a b\ndomain c\n",
		"search\n", "search \t\v\f lan\r\n", "search lan\x85nameserver 1.2.3.4\n",
		"search " + strings.Repeat("a", 70000) + "\n",
		"\x00search x", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		got := searchLine(content)
		if got == "" {
			return
		}
		if !strings.HasPrefix(got, "search ") || len(strings.Fields(got)) < 2 {
			t.Fatalf("search line %q", got)
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Fatalf("search line %q spans lines", got)
		}
	})
}
