package metrics

import (
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"
)

func init() { registerCollector("thermal_zone", newThermalZoneCollector) }

var thermalZoneDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "thermal_zone", "temp"),
	"Zone temperature in Celsius", []string{"zone", "type"}, nil)

// thermalZoneCollector exports /sys/class/thermal/thermal_zone*.
type thermalZoneCollector struct{ h *host }

func newThermalZoneCollector(h *host) (collector, error) { return &thermalZoneCollector{h: h}, nil }

func (c *thermalZoneCollector) Update(ch emitter) error {
	zones, err := c.h.sys.ClassThermalZoneStats()
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
