package metrics

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("netclass", newNetclassCollector) }

var (
	netInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "info"),
		"Non-numeric data from /sys/class/net/<iface>, value is always 1.",
		[]string{"device", "address", "broadcast", "duplex", "operstate", "ifalias"}, nil)
	netUpDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "up"),
		"Value is 1 if operstate is 'up', 0 otherwise.", []string{"device"}, nil)
)

// netclassCollector exports interface properties from /sys/class/net.
type netclassCollector struct {
	h     *host
	descs descCache
}

func newNetclassCollector(h *host) (collector, error) {
	return &netclassCollector{h: h}, nil
}

func (c *netclassCollector) Update(ch emitter) error {
	nc, err := readNetClass(c.h.sysPath("class", "net"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoData
		}
		return fmt.Errorf("read %s: %w", c.h.sysPath("class", "net"), err)
	}
	for _, m := range netclassMetrics(nc, &c.descs, c.h.series) {
		ch(m)
	}
	return nil
}

func netPropDesc(name string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", name),
		"Network device property: "+name, []string{"device"}, nil)
}

func netclassMetrics(nc sysfs.NetClass, descs *descCache, sc *seriesCache) []prometheus.Metric {
	names := make([]string, 0, len(nc))
	for n := range nc {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []prometheus.Metric
	for _, n := range names {
		i := nc[n]
		up := 0.0
		if i.OperState == "up" {
			up = 1
		}
		out = append(out,
			sc.metric(netUpDesc, prometheus.GaugeValue, up, n),
			sc.metric(netInfoDesc, prometheus.GaugeValue, 1, n, i.Address, i.Broadcast, i.Duplex, i.OperState, i.IfAlias),
		)
		prop := func(name string, v *int64, typ prometheus.ValueType) {
			if v != nil {
				d := descs.get(name, func() *prometheus.Desc { return netPropDesc(name) })
				out = append(out, sc.metric(d, typ, float64(*v), n))
			}
		}
		prop("address_assign_type", i.AddrAssignType, prometheus.GaugeValue)
		prop("carrier", i.Carrier, prometheus.GaugeValue)
		prop("carrier_changes_total", i.CarrierChanges, prometheus.CounterValue)
		prop("carrier_up_changes_total", i.CarrierUpCount, prometheus.CounterValue)
		prop("carrier_down_changes_total", i.CarrierDownCount, prometheus.CounterValue)
		prop("device_id", i.DevID, prometheus.GaugeValue)
		prop("dormant", i.Dormant, prometheus.GaugeValue)
		prop("flags", i.Flags, prometheus.GaugeValue)
		prop("iface_id", i.IfIndex, prometheus.GaugeValue)
		prop("iface_link", i.IfLink, prometheus.GaugeValue)
		prop("iface_link_mode", i.LinkMode, prometheus.GaugeValue)
		prop("mtu_bytes", i.MTU, prometheus.GaugeValue)
		prop("name_assign_type", i.NameAssignType, prometheus.GaugeValue)
		prop("net_dev_group", i.NetDevGroup, prometheus.GaugeValue)
		if i.Speed != nil {
			// Like node_exporter, an unknown speed (-1) is exported as is.
			speedBytes := *i.Speed * 1000 * 1000 / 8
			prop("speed_bytes", &speedBytes, prometheus.GaugeValue)
		}
		prop("transmit_queue_length", i.TxQueueLen, prometheus.GaugeValue)
		prop("protocol_type", i.Type, prometheus.GaugeValue)
	}
	return out
}

// netClassInts maps the numeric attribute files to their field.
var netClassInts = []struct {
	file string
	ptr  func(*sysfs.NetClassIface) **int64
}{
	{"addr_assign_type", func(i *sysfs.NetClassIface) **int64 { return &i.AddrAssignType }},
	{"addr_len", func(i *sysfs.NetClassIface) **int64 { return &i.AddrLen }},
	{"carrier", func(i *sysfs.NetClassIface) **int64 { return &i.Carrier }},
	{"carrier_changes", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierChanges }},
	{"carrier_up_count", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierUpCount }},
	{"carrier_down_count", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierDownCount }},
	{"dev_id", func(i *sysfs.NetClassIface) **int64 { return &i.DevID }},
	{"dormant", func(i *sysfs.NetClassIface) **int64 { return &i.Dormant }},
	{"flags", func(i *sysfs.NetClassIface) **int64 { return &i.Flags }},
	{"ifindex", func(i *sysfs.NetClassIface) **int64 { return &i.IfIndex }},
	{"iflink", func(i *sysfs.NetClassIface) **int64 { return &i.IfLink }},
	{"link_mode", func(i *sysfs.NetClassIface) **int64 { return &i.LinkMode }},
	{"mtu", func(i *sysfs.NetClassIface) **int64 { return &i.MTU }},
	{"name_assign_type", func(i *sysfs.NetClassIface) **int64 { return &i.NameAssignType }},
	{"netdev_group", func(i *sysfs.NetClassIface) **int64 { return &i.NetDevGroup }},
	{"speed", func(i *sysfs.NetClassIface) **int64 { return &i.Speed }},
	{"tx_queue_len", func(i *sysfs.NetClassIface) **int64 { return &i.TxQueueLen }},
	{"type", func(i *sysfs.NetClassIface) **int64 { return &i.Type }},
}

// readNetClass reads /sys/class/net into the same structure as
// procfs' sysfs.FS.NetClass. It opens each interface directory once and
// its attributes relative to it with plain syscalls: this collector reads
// about twenty files per interface every scrape, and going through os.File
// (netpoller registration, path walks) made it the costliest collector.
// Attributes the device does not support (EINVAL, as speed on virtual
// links) are left nil, as procfs does.
func readNetClass(dir string) (sysfs.NetClass, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	nc := sysfs.NetClass{}
	var buf [256]byte
	for _, e := range entries {
		dfd, err := unix.Open(dir+"/"+e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // bonding_masters and other plain files
		}
		i := sysfs.NetClassIface{Name: e.Name()}
		read := func(name string) (string, bool) {
			fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return "", false
			}
			n, err := unix.Read(fd, buf[:])
			_ = unix.Close(fd)
			if err != nil || n < 0 {
				return "", false
			}
			return strings.TrimSpace(string(buf[:n])), true
		}
		for _, a := range netClassInts {
			if s, ok := read(a.file); ok {
				if v, err := strconv.ParseInt(s, 0, 64); err == nil {
					*a.ptr(&i) = &v
				}
			}
		}
		i.Address, _ = read("address")
		i.Broadcast, _ = read("broadcast")
		i.Duplex, _ = read("duplex")
		i.IfAlias, _ = read("ifalias")
		i.OperState, _ = read("operstate")
		_ = unix.Close(dfd)
		nc[i.Name] = i
	}
	return nc, nil
}
