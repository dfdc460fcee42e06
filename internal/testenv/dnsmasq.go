package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DnsmasqOptions are the fixed records a test dnsmasq serves.
type DnsmasqOptions struct {
	// ListenIP is the loopback address to bind; default 127.0.0.1. Any
	// 127.0.0.0/8 address works, which lets tests run several upstreams.
	ListenIP string
	// Addresses maps names to one IPv4 or IPv6 address each
	// (--address=/name/ip: the name and every name below it).
	Addresses map[string]string
	// HostRecords are --host-record values ("name,ip[,ip6][,ttl]").
	HostRecords []string
	// TXT are --txt-record values ("name,text").
	TXT []string
	// Local are domains dnsmasq answers alone (--local=/domain/): names
	// it has no record of are NXDOMAIN, missing types NODATA. Other
	// unknown names are REFUSED.
	Local []string
	// TTL is the TTL of answers from the records above (--local-ttl);
	// default 300 seconds.
	TTL int
}

// Dnsmasq is a Debian dnsmasq on loopback answering only from fixed
// records: it has no upstream, reads neither /etc/resolv.conf nor
// /etc/hosts, and logs every query so tests can count them.
type Dnsmasq struct {
	Addr string // ip:port, UDP and TCP

	mu      sync.Mutex
	log     bytes.Buffer // stderr: start-up errors
	logFile string       // every query, written before dnsmasq answers it
}

// StartDnsmasq starts dnsmasq on a free port and stops it when the test
// ends. A missing dnsmasq binary skips the test, or fails it with CI=true.
func StartDnsmasq(t testing.TB, o DnsmasqOptions) *Dnsmasq {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	Require(t, "dnsmasq", err)
	if o.ListenIP == "" {
		o.ListenIP = "127.0.0.1"
	}
	if o.TTL == 0 {
		o.TTL = 300
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freeUDPTCPPort(t, o.ListenIP)
		d := &Dnsmasq{
			Addr: net.JoinHostPort(o.ListenIP, strconv.Itoa(port)),
			// A file, not stderr: dnsmasq writes its log synchronously,
			// so a query is in the file by the time its answer arrives,
			// and counts never lag behind the queries a test has made.
			logFile: filepath.Join(TempDir(t), "dnsmasq.log"),
		}
		args := []string{
			"--keep-in-foreground", "--conf-file=/dev/null",
			"--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
			"--listen-address=" + o.ListenIP, "--port=" + strconv.Itoa(port),
			// root's group too: a dnsmasq that changes its group (Debian's
			// default is dip) loses the signal that kills it with the test
			// binary (startTied; the kernel clears it on a change of
			// credentials).
			"--pid-file=", "--user=root", "--group=root", "--log-queries", "--log-facility=" + d.logFile,
			"--cache-size=0", "--local-ttl=" + strconv.Itoa(o.TTL),
		}
		for name, ip := range o.Addresses {
			args = append(args, "--address=/"+name+"/"+ip)
		}
		for _, r := range o.HostRecords {
			args = append(args, "--host-record="+r)
		}
		for _, d := range o.Local {
			args = append(args, "--local=/"+d+"/")
		}
		for _, r := range o.TXT {
			args = append(args, "--txt-record="+r)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, args...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			cancel()
			t.Fatalf("dnsmasq stderr pipe: %v", err)
		}
		if err := startTied(cmd); err != nil {
			cancel()
			t.Fatalf("start dnsmasq: %v", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				d.mu.Lock()
				d.log.WriteString(sc.Text() + "\n")
				d.mu.Unlock()
			}
		}()
		exited := make(chan struct{}) // closed once dnsmasq exited
		var exitErr error
		go func() {
			<-done
			exitErr = cmd.Wait()
			close(exited)
		}()
		stop := func() {
			cancel()
			<-exited
		}
		if err := waitDNS(d.Addr, exited, 10*time.Second); err != nil {
			stop()
			lastErr = fmt.Errorf("%w (exit: %v); log:\n%s", err, exitErr, d.stderr())
			continue
		}
		t.Cleanup(stop)
		return d
	}
	t.Fatalf("start dnsmasq: %v", lastErr)
	return nil
}

// Log is everything dnsmasq logged so far.
func (d *Dnsmasq) Log() string {
	b, _ := os.ReadFile(d.logFile)
	return string(b)
}

// stderr is what dnsmasq printed on stderr: start-up errors (queries go
// to the log file only; --no-daemon would copy them here too).
func (d *Dnsmasq) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Queries counts the queries dnsmasq logged for name (any type), as
// "query[A] name from ..." lines.
func (d *Dnsmasq) Queries(name string) int {
	name = strings.TrimSuffix(name, ".")
	n := 0
	for _, line := range strings.Split(d.Log(), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if strings.HasPrefix(f[i], "query[") && strings.EqualFold(f[i+1], name) {
				n++
			}
		}
	}
	return n
}

// freeUDPTCPPort returns a port free for both UDP and TCP on ip.
func freeUDPTCPPort(t testing.TB, ip string) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("find free port on %s: %v", ip, err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("find free port on %s: none free for both udp and tcp", ip)
	return 0
}

// waitDNS waits until a DNS server answers on addr (any answer counts) or
// the process exits.
func waitDNS(addr string, exited <-chan struct{}, timeout time.Duration) error {
	// A minimal query for "." NS, hand-packed to keep this file free of
	// DNS libraries.
	query := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := Poll(ctx, timeout, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write(query); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if n < 2 || buf[0] != 0x12 || buf[1] != 0x34 {
			return fmt.Errorf("odd answer from %s", addr)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dnsmasq on %s did not answer within %s: %w", addr, timeout, err)
	}
	return nil
}
