package metrics

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"
)

func init() { registerCollector("thermal_zone", newThermalZoneCollector) }

var thermalZoneDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "thermal_zone", "temp"),
	"Zone temperature in Celsius", []string{"zone", "type"}, nil)

// thermalZoneCollector exports /sys/class/thermal/thermal_zone*.
type thermalZoneCollector struct {
	h *host
	// none: the last scrape found no zone. The next lists the directory
	// itself first: procfs globs it through os.Open, which costs a
	// runtime poller registration that fails for a directory, and most
	// virtual machines have no zone at all.
	none atomic.Bool
}

func newThermalZoneCollector(h *host) (collector, error) { return &thermalZoneCollector{h: h}, nil }

func (c *thermalZoneCollector) Update(ch emitter) error {
	if c.none.Load() {
		entries, err := readDirInodes(c.h.sysPath("class", "thermal"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read %s: %w", c.h.sysPath("class", "thermal"), err)
		}
		if !slices.ContainsFunc(entries, func(e dirEntry) bool { return strings.HasPrefix(e.name, "thermal_zone") }) {
			return errNoData
		}
	}
	zones, err := c.h.sys.ClassThermalZoneStats()
	c.none.Store(err == nil && len(zones) == 0 || errors.Is(err, os.ErrNotExist))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoData
		}
		return fmt.Errorf("read %s: %w", c.h.sysPath("class", "thermal"), err)
	}
	ms := thermalMetrics(zones, c.h.series)
	if len(ms) == 0 {
		return errNoData
	}
	for _, m := range ms {
		ch(m)
	}
	return nil
}

func thermalMetrics(zones []sysfs.ClassThermalZoneStats, sc *seriesCache) []prometheus.Metric {
	var out []prometheus.Metric
	for _, z := range zones {
		if z.ReadErrors != nil {
			continue
		}
		out = append(out, sc.metric(thermalZoneDesc, prometheus.GaugeValue, float64(z.Temp)/1000, z.Name, z.Type))
	}
	return out
}
