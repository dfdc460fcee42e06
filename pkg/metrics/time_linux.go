package metrics

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("time", newTimeCollector) }

var (
	timeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "time_seconds"),
		"System time in seconds since epoch (1970).", nil, nil)
	timeZoneDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "time", "zone_offset_seconds"),
		"System time zone offset in seconds.", []string{"time_zone"}, nil)
	clocksourceAvailableDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "time", "clocksource_available_info"),
		"Available clocksources read from '/sys/devices/system/clocksource'.", []string{"device", "clocksource"}, nil)
	clocksourceCurrentDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "time", "clocksource_current_info"),
		"Current clocksource read from '/sys/devices/system/clocksource'.", []string{"device", "clocksource"}, nil)
)

// timeCollector exports the system clock (with node_boot_time_seconds it
// gives the uptime dashboards show), its time zone offset and the kernel's
// clocksources, as node_exporter does.
type timeCollector struct {
	h *host
	// clocksources are the clocksource directories, found once: the
	// kernel registers them at boot.
	clocksources []string
}

func newTimeCollector(h *host) (collector, error) {
	dirs, _ := filepath.Glob(h.sysPath("devices", "system", "clocksource", "clocksource[0-9]*"))
	sort.Strings(dirs)
	return &timeCollector{h: h, clocksources: dirs}, nil
}

func (c *timeCollector) Update(ch emitter) error {
	now := c.h.opts.Now()
	ch(c.h.series.metric(timeDesc, prometheus.GaugeValue, float64(now.UnixNano())/1e9))
	zone, offset := now.Zone()
	ch(c.h.series.metric(timeZoneDesc, prometheus.GaugeValue, float64(offset), zone))
	for _, d := range c.clocksources {
		dev := strings.TrimPrefix(filepath.Base(d), "clocksource")
		var buf [512]byte
		if b, err := c.h.files.readSmallFile(filepath.Join(d, "available_clocksource"), buf[:]); err == nil {
			for _, cs := range strings.Fields(string(b)) {
				ch(c.h.series.metric(clocksourceAvailableDesc, prometheus.GaugeValue, 1, dev, cs))
			}
		}
		if b, err := c.h.files.readSmallFile(filepath.Join(d, "current_clocksource"), buf[:]); err == nil {
			if cs := strings.TrimSpace(string(b)); cs != "" {
				ch(c.h.series.metric(clocksourceCurrentDesc, prometheus.GaugeValue, 1, dev, cs))
			}
		}
	}
	return nil
}
