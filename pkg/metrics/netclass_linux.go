package metrics

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"
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
	descs map[string]*prometheus.Desc
}

func newNetclassCollector(h *host) (collector, error) {
	return &netclassCollector{h: h, descs: map[string]*prometheus.Desc{}}, nil
}

func (c *netclassCollector) Update(ch chan<- prometheus.Metric) error {
	nc, err := c.h.sys.NetClass()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoData
		}
		return fmt.Errorf("read %s: %w", c.h.sysPath("class", "net"), err)
	}
	for _, m := range netclassMetrics(nc) {
		ch <- m
	}
	return nil
}

func netPropDesc(name string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", name),
		"Network device property: "+name, []string{"device"}, nil)
}

func netclassMetrics(nc sysfs.NetClass) []prometheus.Metric {
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
			prometheus.MustNewConstMetric(netUpDesc, prometheus.GaugeValue, up, n),
			prometheus.MustNewConstMetric(netInfoDesc, prometheus.GaugeValue, 1, n, i.Address, i.Broadcast, i.Duplex, i.OperState, i.IfAlias),
		)
		prop := func(name string, v *int64, typ prometheus.ValueType) {
			if v != nil {
				out = append(out, prometheus.MustNewConstMetric(netPropDesc(name), typ, float64(*v), n))
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
