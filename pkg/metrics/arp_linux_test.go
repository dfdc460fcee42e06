package metrics

import (
	"maps"
	"strings"
	"testing"
)

// /proc/net/arp is counted by device; its header is skipped and a line
// of another width refused with its number, as procfs does.
func TestCountARPEntries(t *testing.T) {
	text := "IP address       HW type     Flags       HW address            Mask     Device\n" +
		"192.168.1.1      0x1         0x2         52:54:00:12:34:56     *        eth0\n" +
		"192.168.1.7      0x1         0x0         00:00:00:00:00:00     *        eth0\n" +
		"10.0.0.1         0x1         0x2         52:54:00:ab:cd:ef     *        br0\n"
	counts := map[string]int{}
	if err := countARPEntries([]byte(text), counts); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"eth0": 2, "br0": 1}; !maps.Equal(counts, want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
	err := countARPEntries([]byte(text+"10.0.0.2 0x1 0x2 52:54:00:ab:cd:ef\n"), map[string]int{})
	if err == nil || !strings.Contains(err.Error(), "line 5: 4 columns") {
		t.Fatalf("a short line: %v", err)
	}
}
