package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// NetNS is a pair of network namespaces made for one test, joined by a
// veth pair: Link lives in Name, PeerLink in Peer. Both namespaces have lo
// up; the veth ends start down, without addresses. Everything is deleted
// when the test ends. Traffic in them never reaches the host's network.
type NetNS struct {
	Name     string // namespace under test
	Peer     string // namespace at the other end of the veth pair
	Link     string // veth end in Name
	PeerLink string // veth end in Peer
}

// NewNetNS creates the namespaces with `ip netns` and `ip link`. Without
// the ip tool or the right to create namespaces (root, CAP_SYS_ADMIN and
// CAP_NET_ADMIN) the test is skipped, or fails with CI=true.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	_, err := exec.LookPath("ip")
	Require(t, "ip (iproute2)", err)
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	n := &NetNS{Name: "hostd-" + id, Peer: "hostd-" + id + "-p", Link: "veth0", PeerLink: "veth1"}
	if err := ipCmd("netns", "add", n.Name); err != nil {
		Require(t, "network namespaces", err)
	}
	t.Cleanup(func() { ipCmd("netns", "del", n.Name) })
	if err := ipCmd("netns", "add", n.Peer); err != nil {
		t.Fatalf("create netns %s: %v", n.Peer, err)
	}
	t.Cleanup(func() { ipCmd("netns", "del", n.Peer) })
	steps := [][]string{
		{"link", "add", n.Link, "netns", n.Name, "type", "veth", "peer", "name", n.PeerLink, "netns", n.Peer},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Peer, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatalf("set up netns %s: %v", n.Name, err)
		}
	}
	return n
}

// IP runs `ip -n Name args...` and fails the test on error.
func (n *NetNS) IP(t testing.TB, args ...string) {
	t.Helper()
	if err := ipCmd(append([]string{"-n", n.Name}, args...)...); err != nil {
		t.Fatalf("%v", err)
	}
}

// PeerIP runs `ip -n Peer args...` and fails the test on error.
func (n *NetNS) PeerIP(t testing.TB, args ...string) {
	t.Helper()
	if err := ipCmd(append([]string{"-n", n.Peer}, args...)...); err != nil {
		t.Fatalf("%v", err)
	}
}

// Handle opens the namespace under test for netlink; it is closed when
// the test ends.
func (n *NetNS) Handle(t testing.TB) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		t.Fatalf("open netns %s: %v", n.Name, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
