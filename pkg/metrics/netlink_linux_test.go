package metrics

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
)

// metricList replays metrics collected beforehand, for an exposition of
// them (exposition gathers in goroutines of its own).
type metricList []prometheus.Metric

func (l metricList) Describe(chan<- *prometheus.Desc) {}

func (l metricList) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l {
		ch <- m
	}
}

// collectNet runs the netclass and netdev collectors of h in the calling
// goroutine (its thread's network namespace) and returns what they
// exported, their scrape metrics left out.
func collectNet(t testing.TB, h *host) metricList {
	t.Helper()
	n, err := newNodeCollector(h, []string{"netclass", "netdev"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Error(err)
		return nil
	}
	var out metricList
	n.CollectTo(func(m prometheus.Metric) {
		if d := m.Desc(); d != scrapeDurationDesc && d != scrapeSuccessDesc {
			out = append(out, m)
		}
	})
	return out
}

// On this host, the netclass and netdev collectors export the same with
// the link dump as from sysfs and /proc/net/dev alone. Counters of a busy
// interface can move between the two reads: the two must agree at one of
// several tries.
func TestLinkDumpMatchesSysfs(t *testing.T) {
	withDump, err := newHost(HostOptions{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if withDump.links == nil {
		t.Fatal("the host's /sys and /proc: no link dump")
	}
	sysOnly, err := newHost(HostOptions{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sysOnly.links = nil
	var a, b string
	for try := 0; try < 5; try++ {
		a, b = exposition(t, collectNet(t, withDump)), exposition(t, collectNet(t, sysOnly))
		if a == b {
			break
		}
	}
	if a != b {
		t.Fatalf("with the link dump:\n%s\nfrom sysfs:\n%s", a, b)
	}
	if !strings.Contains(a, "node_network_info{") || !strings.Contains(a, "node_network_mtu_bytes{") {
		t.Fatalf("no interfaces:\n%s", a)
	}
	if !strings.Contains(a, "node_network_receive_bytes_total{") {
		t.Log("no interface but loopback: netdev exported nothing")
	}
}

// In a network namespace with interfaces of several kinds and settings
// (a veth pair, one end with an alias, MTU, queue length, group and an
// address set by hand, the other a bridge port and so promiscuous; a
// macvlan on it, whose link is another interface; an ifb that is down;
// an empty bridge without carrier; loopback), the link dump gives what
// sysfs and /proc/net/dev give, and what the real node_exporter exports
// there, values included.
func TestLinkDumpInNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	ns := testenv.NewNetNS(t)
	for _, args := range [][]string{
		{"link", "add", "vA", "type", "veth", "peer", "name", "vB"},
		{"link", "set", "vA", "alias", "uplink to the lab", "mtu", "1280", "txqueuelen", "77", "group", "5", "address", "02:00:00:00:00:05"},
		{"link", "add", "br0", "type", "bridge", "forward_delay", "0"},
		{"link", "add", "br1", "type", "bridge"},
		{"link", "set", "vB", "master", "br0"},
		{"link", "add", "mv0", "link", "vA", "type", "macvlan"},
		{"link", "add", "ib0", "type", "ifb"},
		{"link", "set", "vA", "up"},
		{"link", "set", "vB", "up"},
		{"link", "set", "br0", "up"},
		{"link", "set", "br1", "up"},
		{"link", "set", "mv0", "up"},
	} {
		ns.IP(t, args...)
	}
	// br0's state changes once its port forwards: from then on it
	// holds still.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := exec.Command("ip", "-n", ns.Name, "-o", "link", "show", "br0").CombinedOutput()
		if err == nil && strings.Contains(string(out), "state UP") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("br0 not up: %s %v", out, err)
		}
	}
	// No IPv6: its neighbour discovery would move the counters between
	// the reads.
	if out, err := exec.Command("ip", "netns", "exec", ns.Name, "sysctl", "-q", "-w",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Logf("disable IPv6 in %s: %v: %s", ns.Name, err, out)
	}

	bin := testenv.LookPath(t, "prometheus-node-exporter")
	ne := exec.Command("ip", "netns", "exec", ns.Name, bin, "--web.listen-address=127.0.0.1:9100",
		"--collector.disable-defaults", "--collector.netclass", "--collector.netdev")
	ne.Stdout, ne.Stderr = os.Stderr, os.Stderr
	if err := ne.Start(); err != nil {
		t.Fatalf("start node_exporter in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { _ = ne.Process.Kill(); _ = ne.Wait() })

	// Each try collects both ways and asks node_exporter; an empty
	// bridge's carrier can still change between them, so the test takes
	// the first of several tries where all agree.
	type snapshot struct {
		withDump, sysOnly metricList
		theirs            string
	}
	type result struct {
		tries []snapshot
		err   error
	}
	dir := t.TempDir()
	done := make(chan result, 1)
	go func() {
		// The thread moves to the namespace (and a mount namespace of its
		// own) and is not handed back to the runtime: it ends with this
		// goroutine.
		runtime.LockOSThread()
		var r result
		r.err = func() error {
			f, err := os.Open(filepath.Join("/run/netns", ns.Name))
			if err != nil {
				return err
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("enter %s: %w", ns.Name, err)
			}
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare mount namespace: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make mounts private: %w", err)
			}
			// A sysfs mounted from the namespace shows its interfaces; its
			// /proc/net/dev is this thread's.
			sys, proc := filepath.Join(dir, "sys"), filepath.Join(dir, "proc")
			if err := os.MkdirAll(sys, 0o755); err != nil {
				return err
			}
			if err := unix.Mount("sysfs", sys, "sysfs", 0, ""); err != nil {
				return fmt.Errorf("mount sysfs: %w", err)
			}
			if err := os.MkdirAll(proc, 0o755); err != nil {
				return err
			}
			if err := os.Symlink(fmt.Sprintf("/proc/self/task/%d/net", unix.Gettid()), filepath.Join(proc, "net")); err != nil {
				return err
			}
			opts := HostOptions{SysPath: sys, ProcPath: proc}
			a, err := newHost(opts, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			a.links = &linkDumper{}
			b, err := newHost(opts, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			for try := 0; try < 5; try++ {
				if try > 0 {
					time.Sleep(300 * time.Millisecond)
				}
				var sn snapshot
				sn.withDump, sn.sysOnly = collectNet(t, a), collectNet(t, b)
				if sn.theirs, err = getInThread("127.0.0.1:9100", 15*time.Second); err != nil {
					return err
				}
				r.tries = append(r.tries, sn)
			}
			return nil
		}()
		done <- r
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	var diffs []string
	for _, sn := range r.tries {
		if diffs = compareLinkDump(t, sn.withDump, sn.sysOnly, sn.theirs); len(diffs) == 0 {
			return
		}
	}
	t.Fatal(strings.Join(diffs, "\n"))
}

// compareLinkDump lists how the netclass and netdev families from the
// link dump differ from those from sysfs and from node_exporter's
// exposition theirs, and the values the namespace's settings must give.
func compareLinkDump(t *testing.T, withDump, sysOnly metricList, theirs string) []string {
	var diffs []string
	ours, fromSys := exposition(t, withDump), exposition(t, sysOnly)
	if ours != fromSys {
		diffs = append(diffs, fmt.Sprintf("with the link dump:\n%s\nfrom sysfs:\n%s", ours, fromSys))
	}
	for _, want := range []string{
		`node_network_info{address="02:00:00:00:00:05",broadcast="ff:ff:ff:ff:ff:ff",device="vA",duplex="full",ifalias="uplink to the lab",operstate="up"} 1`,
		`node_network_mtu_bytes{device="vA"} 1280`,
		`node_network_transmit_queue_length{device="vA"} 77`,
		`node_network_net_dev_group{device="vA"} 5`,
		`node_network_address_assign_type{device="vA"} 3`,
		`node_network_up{device="ib0"} 0`,
	} {
		if !strings.Contains(ours, want+"\n") {
			diffs = append(diffs, fmt.Sprintf("no %s in:\n%s", want, ours))
		}
	}
	// node_exporter's values, family by family.
	their := parseExposition(t, theirs)
	mine := parseExposition(t, ours)
	compared := 0
	for name, mf := range their {
		if !strings.HasPrefix(name, "node_network_") {
			continue
		}
		got, ok := mine[name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only node_exporter exports it: %v", name, samples(mf)))
			continue
		}
		compared++
		if a, b := strings.Join(samples(got), "\n"), strings.Join(samples(mf), "\n"); a != b {
			diffs = append(diffs, fmt.Sprintf("%s:\nhostd:\n%s\nnode_exporter:\n%s", name, a, b))
		}
	}
	for name, mf := range mine {
		if _, ok := their[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only hostd exports it: %v", name, samples(mf)))
		}
	}
	if compared < 30 {
		diffs = append(diffs, fmt.Sprintf("only %d families compared with node_exporter", compared))
	}
	return diffs
}

// getInThread fetches /metrics from addr with a connection made in the
// calling thread (its network namespace), trying until within.
func getInThread(addr string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		body, err := getOnce(addr)
		if err == nil || time.Now().After(deadline) {
			return body, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getOnce(addr string) (string, error) {
	// A socket of this thread's namespace: net.Dial would dial in
	// another goroutine.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		_ = unix.Close(fd)
		return "", err
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			_ = unix.Close(fd)
			return "", err
		}
	}
	if err := unix.Connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		return "", err
	}
	f := os.NewFile(uintptr(fd), "node_exporter")
	defer f.Close()
	if _, err := fmt.Fprintf(f, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(f), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&sb); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return sb.String(), nil
}

// A dump's datagram is parsed without trusting its lengths: a message or
// attribute longer than what is left ends the parse, a message of
// another request is skipped, and an error message ends the dump with
// its error.
func TestLinkDumpParse(t *testing.T) {
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body)+3)
		binary.NativeEndian.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(body)))
		binary.NativeEndian.PutUint16(b[4:], typ)
		binary.NativeEndian.PutUint32(b[8:], seq)
		b = append(b, body...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	attr := func(typ uint16, v []byte) []byte {
		b := make([]byte, 4, 4+len(v)+3)
		binary.NativeEndian.PutUint16(b[0:], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	le32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	link := func(index uint32, attrs ...[]byte) []byte {
		b := make([]byte, unix.SizeofIfInfomsg)
		binary.NativeEndian.PutUint16(b[2:], 1) // ARPHRD_ETHER
		binary.NativeEndian.PutUint32(b[4:], index)
		binary.NativeEndian.PutUint32(b[8:], unix.IFF_UP)
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	d := &linkDumper{seq: 7}
	dgram := append(msg(unix.RTM_NEWLINK, 7, link(2,
		attr(unix.IFLA_IFNAME, []byte("eth0\x00")),
		attr(unix.IFLA_ADDRESS, []byte{0x02, 0xab, 0, 0, 0, 1}),
		attr(unix.IFLA_MTU, le32(9000)),
		attr(unix.IFLA_LINK, le32(9)),
		attr(unix.IFLA_MTU, []byte{1}), // too short: ignored
	)), msg(unix.RTM_NEWLINK, 6, link(3, attr(unix.IFLA_IFNAME, []byte("old\x00"))))...)
	dgram = append(dgram, msg(unix.RTM_NEWLINK, 7, link(4, attr(unix.IFLA_MTU, le32(1))))...) // no name: left out
	end, err := d.parse(dgram)
	if end || err != nil {
		t.Fatalf("parse: end %v, err %v", end, err)
	}
	if len(d.links) != 1 {
		t.Fatalf("links %+v, want eth0 only", d.links)
	}
	l := d.links[0]
	if l.name != "eth0" || l.index != 2 || l.typ != 1 || l.address != "02:ab:00:00:00:01" || l.mtu != 9000 ||
		l.has&hasMTU == 0 || l.has&hasIflink == 0 || l.iflink != 9 || l.has&hasTxqlen != 0 {
		t.Fatalf("link %+v", l)
	}

	// A message longer than its datagram.
	bad := msg(unix.RTM_NEWLINK, 7, link(5, attr(unix.IFLA_IFNAME, []byte("x\x00"))))
	binary.NativeEndian.PutUint32(bad[0:], uint32(len(bad)+100))
	if _, err := d.parse(bad); err == nil {
		t.Error("a message longer than its datagram: no error")
	}
	// An attribute longer than its message ends the attributes.
	body := link(6, attr(unix.IFLA_IFNAME, []byte("y\x00")))
	long := attr(unix.IFLA_MTU, le32(1))
	binary.NativeEndian.PutUint16(long[0:], 200)
	d.links = nil
	if _, err := d.parse(msg(unix.RTM_NEWLINK, 7, append(body, long...))); err != nil || len(d.links) != 1 || d.links[0].has&hasMTU != 0 {
		t.Errorf("attribute past its message: err %v, links %+v", err, d.links)
	}
	// The end, and an error.
	if end, err := d.parse(msg(unix.NLMSG_DONE, 7, le32(0))); !end || err != nil {
		t.Errorf("done: end %v, err %v", end, err)
	}
	if end, err := d.parse(msg(unix.NLMSG_ERROR, 7, le32(uint32(0x100000000-int64(unix.EPERM))))); !end || err != unix.EPERM {
		t.Errorf("error: end %v, err %v", end, err)
	}
	// Truncated headers end the parse without a panic.
	for n := range len(dgram) {
		d.links = nil
		_, _ = d.parse(dgram[:n])
	}
}

// The dumper keeps its socket only while files are kept, and makes one
// dump a collection for both collectors.
func TestLinkDumpOncePerRound(t *testing.T) {
	d := &linkDumper{}
	a, err := d.dump(1, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.fd <= 0 {
		t.Fatal("no socket kept")
	}
	b, _ := d.dump(1, true)
	if len(a) == 0 || &a[0] != &b[0] {
		t.Fatal("a second dump in the same round")
	}
	c, _ := d.dump(2, false)
	if len(c) == 0 || &c[0] == &a[0] {
		t.Fatal("no new dump in the next round")
	}
	if d.fd != 0 {
		t.Fatal("socket kept while files are not")
	}
}
