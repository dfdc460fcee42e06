package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The /proc parsers that replaced procfs' refuse what procfs refuses,
// naming the line, and read what it reads.
func TestProcParsersRefuseMalformed(t *testing.T) {
	const ctHeader = "entries searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete search_restart\n"
	const ctLine = "00000021 00000000 0000000a 00000000 00000003 00000004 00000000 00000000 00000005 00000006 00000007 00000008 00000000 00000000 00000000 00000000 00000009\n"
	tot, err := parseConntrackStat([]byte(ctHeader + ctLine + ctLine))
	if err != nil || tot != (conntrackTotals{found: 20, invalid: 6, ignore: 8, insert: 10, insertFailed: 12, drop: 14, earlyDrop: 16, searchRestart: 18}) {
		t.Errorf("conntrack stat = %+v, %v", tot, err)
	}
	s, err := parseSockstat([]byte("sockets: used 7\nTCP: inuse 3 orphan 0 tw 1 alloc 4 mem 2\nFRAG: inuse 0 memory 0\n"))
	if err != nil || s.Used == nil || *s.Used != 7 || len(s.Protocols) != 2 || s.Protocols[0].Protocol != "TCP" ||
		s.Protocols[0].InUse != 3 || *s.Protocols[0].Mem != 2 || s.Protocols[1].Memory == nil {
		t.Errorf("sockstat = %+v, %v", s, err)
	}
	l, err := parseLoadavg([]byte("0.50 0.25 1.75 1/123 4567\n"))
	if err != nil || l.Load1 != 0.5 || l.Load5 != 0.25 || l.Load15 != 1.75 {
		t.Errorf("loadavg = %+v, %v", l, err)
	}
	for _, tc := range []struct {
		name, want string
		parse      func() error
	}{
		{"conntrack stat, 15 columns", "line 2: 15 columns", func() error {
			_, err := parseConntrackStat([]byte(ctHeader + strings.Repeat("00000001 ", 15) + "\n"))
			return err
		}},
		{"conntrack stat, not hexadecimal", "line 3:", func() error {
			_, err := parseConntrackStat([]byte(ctHeader + ctLine + strings.Replace(ctLine, "00000021", "0000002x", 1)))
			return err
		}},
		{"sockstat, a key without a value", "line 2: inuse without a value", func() error {
			_, err := parseSockstat([]byte("sockets: used 7\nTCP: inuse\n"))
			return err
		}},
		{"sockstat, no pairs", "line 1:", func() error {
			_, err := parseSockstat([]byte("sockets:\n"))
			return err
		}},
		{"loadavg, two fields", "2 fields", func() error {
			_, err := parseLoadavg([]byte("0.50 0.25\n"))
			return err
		}},
	} {
		if err := tc.parse(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// A /proc/net/netstat or snmp values line is handed out only when it has
// as many values as its header has names, each a number, and then in
// the header's order; a line that does not hands out nothing.
func TestNetstatPairs(t *testing.T) {
	c := &netstatCollector{h: &host{}, headers: map[string][]*prometheus.Desc{}, snmp6: map[string]*prometheus.Desc{}}
	emitted := func(text string) ([]float64, error) {
		var got []float64
		err := c.emitPairs([]byte(text), func(m prometheus.Metric) {
			var out dto.Metric
			if err := m.Write(&out); err != nil {
				t.Fatal(err)
			}
			got = append(got, out.GetUntyped().GetValue())
		})
		return got, err
	}
	const header = "Tcp: RtoAlgorithm ActiveOpens PassiveOpens\n"
	if got, err := emitted(header + "Tcp: 1 10 20\n"); err != nil || len(got) != 2 || got[0] != 10 || got[1] != 20 {
		t.Fatalf("got %v, %v; want [10 20] (RtoAlgorithm is not exported)", got, err)
	}
	for _, values := range []string{"Tcp: 1 10\n", "Tcp: 1 10 20 30\n", "Tcp: 1 10 x\n", "Tcp: 1 x 20\n"} {
		if got, err := emitted(header + values); err == nil || len(got) != 0 {
			t.Fatalf("%q: handed out %v, err %v; want nothing and an error", values, got, err)
		}
	}
}
