package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("udp_queues", newUDPQueuesCollector) }

var udpQueuesDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "udp", "queues"),
	"Number of allocated memory in the kernel for UDP datagrams in bytes.", []string{"queue", "ip"}, nil)

// udpQueuesCollector sums the send and receive queues of /proc/net/udp
// and udp6. A host without IPv6 reports only v4.
type udpQueuesCollector struct {
	h   *host
	mu  sync.Mutex // guards buf between concurrent gathers
	buf []byte     // the last file read, reused
}

func newUDPQueuesCollector(h *host) (collector, error) { return &udpQueuesCollector{h: h}, nil }

func (c *udpQueuesCollector) Update(ch emitter) error {
	for _, f := range []struct{ file, ip string }{{"udp", "v4"}, {"udp6", "v6"}} {
		path := c.h.procPath("net", f.file)
		tx, rx, err := c.read(path)
		if f.ip == "v6" && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		ch(c.h.series.metric(udpQueuesDesc, prometheus.GaugeValue, float64(tx), "tx", f.ip))
		ch(c.h.series.metric(udpQueuesDesc, prometheus.GaugeValue, float64(rx), "rx", f.ip))
	}
	return nil
}

// read sums the queues of one file.
func (c *udpQueuesCollector) read(path string) (tx, rx uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if tx, rx, err = parseUDPQueues(c.buf); err != nil {
		return 0, 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return tx, rx, nil
}

// parseUDPQueues sums the tx_queue:rx_queue column (hexadecimal, the
// fifth) of /proc/net/udp or udp6, without parsing the rest of each line.
func parseUDPQueues(b []byte) (tx, rx uint64, err error) {
	first := true
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if first { // the header
			first = false
			continue
		}
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 5 {
			return 0, 0, fmt.Errorf("short line %q", line)
		}
		t, r, ok := bytes.Cut(f[4], []byte{':'})
		if !ok {
			return 0, 0, fmt.Errorf("bad queue column %q", f[4])
		}
		tv, err1 := strconv.ParseUint(string(t), 16, 64)
		rv, err2 := strconv.ParseUint(string(r), 16, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("bad queue column %q", f[4])
		}
		tx += tv
		rx += rv
	}
	return tx, rx, nil
}
