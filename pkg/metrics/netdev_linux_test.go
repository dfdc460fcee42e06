package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The netdev collector leaves out interfaces whose flags (hexadecimal in
// /sys/class/net/<dev>/flags) have IFF_LOOPBACK, whatever their name,
// and reads rx_nohandler of the others.
func TestNetdevLoopbackByFlags(t *testing.T) {
	dir := t.TempDir()
	proc, sys := filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	files := map[string]string{
		"proc/net/dev": "Inter-|   Receive                                                |  Transmit\n" +
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
			"   lo0: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n" +
			"  eth0: 200 2 0 0 0 0 0 3 400 4 0 0 0 0 0 0\n",
		"sys/class/net/lo0/flags":                    "0x9\n",
		"sys/class/net/eth0/flags":                   "0x1003\n",
		"sys/class/net/eth0/statistics/rx_nohandler": "7\n",
		"sys/class/net/lo0/statistics/rx_nohandler":  "1\n",
		"sys/class/net/bonding_masters":              "\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := fixtureHostOptions()
	opts.ProcPath, opts.SysPath = proc, sys
	h, err := newHost(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNodeCollector(h, []string{"netdev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := exposition(t, n)
	for _, want := range []string{
		`node_network_receive_bytes_total{device="eth0"} 200`,
		`node_network_receive_multicast_total{device="eth0"} 3`,
		`node_network_transmit_packets_total{device="eth0"} 4`,
		`node_network_receive_nohandler_total{device="eth0"} 7`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "lo0") {
		t.Errorf("lo0 (IFF_LOOPBACK) exported")
	}
	if t.Failed() {
		t.Log(out)
	}
}
