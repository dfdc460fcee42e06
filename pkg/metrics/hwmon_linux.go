package metrics

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("hwmon", newHwmonCollector) }

var (
	hwmonInvalidName = regexp.MustCompile(`[^a-z0-9:_]`)
	// hwmonFile splits a sensor file name into type, number and property:
	// temp1_input, in0_max, fan2_fault, pwm1, beep_enable.
	hwmonFile   = regexp.MustCompile(`^([^0-9]+)([0-9]*)(?:_(.+))?$`)
	hwmonLabels = []string{"chip", "sensor"}
	// hwmonTypes are the sensor types node_exporter exports.
	hwmonTypes = map[string]bool{
		"vrm": true, "beep_enable": true, "update_interval": true, "in": true, "cpu": true, "fan": true,
		"pwm": true, "temp": true, "curr": true, "power": true, "energy": true, "humidity": true,
		"intrusion": true,
	}
	hwmonChipNames = prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "chip_names"),
		"Annotation metric for human-readable chip names", []string{"chip", "chip_name"}, nil)
	hwmonSensorLabel = prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "sensor_label"),
		"Label for given chip and sensor", []string{"chip", "sensor", "label"}, nil)
)

// hwmonCollector exports the sensors of /sys/class/hwmon (procfs has no
// reader for it): temperatures, voltages, fans, currents, power, energy,
// humidity, PWM outputs and alarms, with node_exporter's metric names,
// help texts, units and chip names, so series keep their identity across
// reboots and dashboards built for node_exporter work unchanged.
type hwmonCollector struct {
	h     *host
	descs descCache
}

func newHwmonCollector(h *host) (collector, error) { return &hwmonCollector{h: h}, nil }

func (c *hwmonCollector) Update(ch emitter) error {
	dir := c.h.sysPath("class", "hwmon")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoData
		}
		return fmt.Errorf("read %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		ms, err := c.chipMetrics(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		for _, m := range ms {
			ch(m)
			n++
		}
	}
	if n == 0 {
		return errNoData
	}
	return nil
}

func cleanHwmonName(s string) string {
	return strings.Trim(hwmonInvalidName.ReplaceAllString(strings.ToLower(strings.TrimSpace(s)), "_"), "_")
}

// hwmonChip names a chip from its device path, else its name file, else
// the hwmonN directory.
func hwmonChip(dir string) string {
	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		prefix, name := filepath.Split(dev)
		_, typ := filepath.Split(strings.TrimRight(prefix, "/"))
		name, typ = cleanHwmonName(name), cleanHwmonName(typ)
		if typ != "" && name != "" {
			return typ + "_" + name
		}
		if name != "" {
			return name
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil {
		if n := cleanHwmonName(string(b)); n != "" {
			return n
		}
	}
	return cleanHwmonName(filepath.Base(dir))
}

// readSensors adds the sensor files of dir to data: sensor ("temp1",
// "beep_enable0") -> property ("input", "max", "" for a bare value) ->
// value as written.
func readSensors(dir string, data map[string]map[string]string) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, f := range files {
		m := hwmonFile.FindStringSubmatch(f.Name())
		if m == nil || !hwmonTypes[m[1]] {
			continue
		}
		num := 0
		if m[2] != "" {
			if num, err = strconv.Atoi(m[2]); err != nil {
				continue
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			continue // sensors that cannot be read right now (EAGAIN, ENODATA) are skipped
		}
		sensor := m[1] + strconv.Itoa(num)
		if data[sensor] == nil {
			data[sensor] = map[string]string{}
		}
		data[sensor][m[3]] = strings.TrimRight(string(b), "\n")
	}
	return nil
}

// hwmonValue is how node_exporter exports one property of a sensor
// type: the metric name suffix, help text, value type, and the factor
// (milli units) or divisor (micro units) that makes the value base units
// (kept apart so values match node_exporter's to the last bit).
func hwmonValue(typ, prop string) (suffix, help string, vt prometheus.ValueType, mul, div float64) {
	vt, mul, div = prometheus.GaugeValue, 1, 1
	switch {
	case prop == "fault" || prop == "alarm":
		return "", "Hardware sensor " + prop + " status (" + typ + ")", vt, mul, div
	case prop == "beep":
		return "_enabled", "Hardware monitor sensor has beeping enabled", vt, mul, div
	case typ == "in" || typ == "cpu":
		return "_volts", "Hardware monitor for voltage (" + prop + ")", vt, 0.001, div
	case typ == "temp" && prop != "type":
		return "_celsius", "Hardware monitor for temperature (" + prop + ")", vt, 0.001, div
	case typ == "curr":
		return "_amps", "Hardware monitor for current (" + prop + ")", vt, 0.001, div
	case typ == "energy":
		return "_joule_total", "Hardware monitor for joules used so far (" + prop + ")", prometheus.CounterValue, mul, 1e6
	case typ == "power" && prop == "accuracy":
		return "", "Hardware monitor power meter accuracy, as a ratio", vt, mul, 1e6
	case typ == "power" && (prop == "average_interval" || prop == "average_interval_min" || prop == "average_interval_max"):
		return "_seconds", "Hardware monitor power usage update interval (" + prop + ")", vt, 0.001, div
	case typ == "power":
		return "_watt", "Hardware monitor for power usage in watts (" + prop + ")", vt, mul, 1e6
	case typ == "humidity":
		return "", "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (" + prop + ")", vt, mul, 1e6
	case typ == "fan" && (prop == "input" || prop == "min" || prop == "max" || prop == "target"):
		return "_rpm", "Hardware monitor for fan revolutions per minute (" + prop + ")", vt, mul, div
	}
	return "", "Hardware monitor " + typ + " element " + prop, vt, mul, div
}

func (c *hwmonCollector) chipMetrics(dir string) ([]prometheus.Metric, error) {
	chip := hwmonChip(dir)
	var out []prometheus.Metric
	if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil {
		out = append(out, c.h.series.metric(hwmonChipNames, prometheus.GaugeValue, 1, chip, strings.TrimSpace(string(b))))
	}
	// Sensor files live in the hwmon directory or, on older kernels, in
	// its device directory.
	data := map[string]map[string]string{}
	if err := readSensors(dir, data); err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(dir, "device")); err == nil && st.IsDir() {
		if err := readSensors(filepath.Join(dir, "device"), data); err != nil {
			return nil, err
		}
	}
	sensors := make([]string, 0, len(data))
	for s := range data {
		sensors = append(sensors, s)
	}
	sort.Strings(sensors)
	for _, sensor := range sensors {
		props := data[sensor]
		typ := strings.TrimRight(sensor, "0123456789")
		if label, ok := props["label"]; ok && strings.TrimSpace(label) != "" {
			out = append(out, c.h.series.metric(hwmonSensorLabel, prometheus.GaugeValue, 1, chip, sensor, label))
		}
		switch typ {
		case "beep_enable":
			v := 0.0
			if props[""] == "1" {
				v = 1
			}
			out = append(out, c.metric("node_hwmon_beep_enabled", "Hardware beep enabled", prometheus.GaugeValue, v, chip, sensor))
			continue
		case "vrm", "update_interval":
			v, err := strconv.ParseFloat(props[""], 64)
			if err != nil {
				continue
			}
			if typ == "vrm" {
				out = append(out, c.metric("node_hwmon_voltage_regulator_version", "Hardware voltage regulator", prometheus.GaugeValue, v, chip, sensor))
			} else {
				out = append(out, c.metric("node_hwmon_update_interval_seconds", "Hardware monitor update interval", prometheus.GaugeValue, v*0.001, chip, sensor))
			}
			continue
		}
		names := make([]string, 0, len(props))
		for p := range props {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, prop := range names {
			if prop == "label" {
				continue
			}
			v, err := strconv.ParseFloat(props[prop], 64)
			if err != nil {
				continue
			}
			name := "node_hwmon_" + typ
			switch {
			case prop == "input":
				// The value itself, unless the sensor also has a bare
				// file (pwm1 next to pwm1_input).
				if _, ok := props[""]; ok {
					name += "_input"
				}
			case prop != "":
				name += "_" + cleanHwmonName(prop)
			}
			suffix, help, vt, mul, div := hwmonValue(typ, prop)
			out = append(out, c.metric(name+suffix, help, vt, v*mul/div, chip, sensor))
		}
	}
	return out, nil
}

func (c *hwmonCollector) metric(name, help string, vt prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	d := c.descs.get(name+"\x00"+help, func() *prometheus.Desc { return prometheus.NewDesc(name, help, hwmonLabels, nil) })
	return c.h.series.metric(d, vt, v, labels...)
}
