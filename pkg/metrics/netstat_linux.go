package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("netstat", newNetstatCollector) }

// netstatFields is node_exporter's default --collector.netstat.fields:
// the protocol counters its dashboards chart (errors, TCP opens, resets,
// retransmits, listen drops, SYN cookies, UDP datagrams and buffer
// errors, IP octets).
var netstatFields = regexp.MustCompile(`^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`)

// netstatCollector exports the kernel's protocol counters from
// /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6 as node_exporter
// does: node_netstat_<Protocol>_<Counter>, untyped, for the fields its
// default filter keeps. Which fields a header line keeps is worked out
// once per distinct header, so a scrape only parses the kept values.
type netstatCollector struct {
	h *host

	mu      sync.Mutex
	buf     []byte
	headers map[string][]*prometheus.Desc // header line -> desc per field, nil where filtered out
	snmp6   map[string]*prometheus.Desc   // snmp6 name -> desc, nil where filtered out
	vals    []float64                     // a values line's exported values, reused
}

func newNetstatCollector(h *host) (collector, error) {
	return &netstatCollector{h: h, headers: map[string][]*prometheus.Desc{}, snmp6: map[string]*prometheus.Desc{}}, nil
}

// netstatDesc returns the descriptor of Proto_Counter, or nil when the
// field filter drops it.
func netstatDesc(key string) *prometheus.Desc {
	if !netstatFields.MatchString(key) {
		return nil
	}
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "netstat", key),
		"Statistic "+strings.Replace(key, "_", "", 1)+".", nil, nil)
}

// read reads /proc/net/<name> into the collector's buffer.
func (c *netstatCollector) read(name string) ([]byte, error) {
	b, err := c.h.files.readFileReuse(c.h.procPath("net", name), c.buf)
	c.buf = b
	return b, err
}

func (c *netstatCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range []string{"netstat", "snmp"} {
		b, err := c.read(name)
		if err != nil {
			return err // names the file
		}
		if err := c.emitPairs(b, ch); err != nil {
			return fmt.Errorf("parse %s: %w", c.h.procPath("net", name), err)
		}
	}
	switch b, err := c.read("snmp6"); {
	case err == nil:
		return c.emitSNMP6(b, ch)
	case errors.Is(err, os.ErrNotExist): // no IPv6
		return nil
	default:
		return err
	}
}

// emitPairs reads the "Proto: name name ..." / "Proto: value value ..."
// line pairs of /proc/net/netstat and /proc/net/snmp.
func (c *netstatCollector) emitPairs(b []byte, ch emitter) error {
	for len(b) > 0 {
		var header, values []byte
		header, b, _ = bytes.Cut(b, []byte("\n"))
		if len(bytes.TrimSpace(header)) == 0 {
			continue
		}
		values, b, _ = bytes.Cut(b, []byte("\n"))
		descs, ok := c.headers[string(header)]
		if !ok {
			names := strings.Fields(string(header))
			if !strings.HasSuffix(names[0], ":") {
				return fmt.Errorf("line %q: no protocol", header)
			}
			proto := strings.TrimSuffix(names[0], ":")
			descs = make([]*prometheus.Desc, len(names)-1)
			for i, n := range names[1:] {
				descs[i] = netstatDesc(proto + "_" + n)
			}
			c.headers[string(header)] = descs
		}
		// The values are parsed field by field into a buffer the
		// collector keeps, not split into a slice first (about a hundred
		// fields each scrape were most of this collector's allocations),
		// and handed out only once the line has as many as its header.
		proto, rest := nextField(values)
		c.vals = c.vals[:0]
		n := 0
		for {
			var field []byte
			if field, rest = nextField(rest); field == nil {
				break
			}
			if n < len(descs) && descs[n] != nil {
				v, err := strconv.ParseFloat(string(field), 64)
				if err != nil {
					return fmt.Errorf("%s %s value %q: %w", proto, descs[n], field, err)
				}
				c.vals = append(c.vals, v)
			}
			n++
		}
		if n != len(descs) {
			return fmt.Errorf("%s %d names and %d values", bytes.Fields(header)[0], len(descs), n)
		}
		vals := c.vals
		for _, d := range descs {
			if d != nil {
				ch(c.h.series.metric(d, prometheus.UntypedValue, vals[0]))
				vals = vals[1:]
			}
		}
	}
	return nil
}

// emitSNMP6 reads /proc/net/snmp6's "Ip6InReceives 123" lines (the
// protocol name ends at its "6": Ip6_InReceives).
func (c *netstatCollector) emitSNMP6(b []byte, ch emitter) error {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		name, value, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok {
			if name, value, ok = bytes.Cut(bytes.TrimSpace(line), []byte("\t")); !ok {
				continue
			}
		}
		d, seen := c.snmp6[string(name)]
		if !seen {
			if i := bytes.IndexByte(name, '6'); i >= 0 {
				d = netstatDesc(string(name[:i+1]) + "_" + string(name[i+1:]))
			}
			c.snmp6[string(name)] = d
		}
		if d == nil {
			continue
		}
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(value)), 64)
		if err != nil {
			return fmt.Errorf("parse %s value %q: %w", name, value, err)
		}
		ch(c.h.series.metric(d, prometheus.UntypedValue, v))
	}
	return nil
}
