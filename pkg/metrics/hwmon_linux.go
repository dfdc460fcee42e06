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
	hwmonTempFile    = regexp.MustCompile(`^temp(\d+)_(input|max|crit)$`)
	hwmonChipNames   = prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "chip_names"),
		"Annotation metric for human-readable chip names", []string{"chip", "chip_name"}, nil)
	hwmonTempDescs = map[string]*prometheus.Desc{
		"input": prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "temp_celsius"),
			"Hardware monitor for temperature (input)", []string{"chip", "sensor"}, nil),
		"max": prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "temp_max_celsius"),
			"Hardware monitor for temperature (max)", []string{"chip", "sensor"}, nil),
		"crit": prometheus.NewDesc(prometheus.BuildFQName(namespace, "hwmon", "temp_crit_celsius"),
			"Hardware monitor for temperature (crit)", []string{"chip", "sensor"}, nil),
	}
)

// hwmonCollector exports temperature sensors of /sys/class/hwmon (procfs
// has no reader for it). Chip names follow node_exporter so series keep
// their identity across reboots.
type hwmonCollector struct{ h *host }

func newHwmonCollector(h *host) (collector, error) { return &hwmonCollector{h: h}, nil }

func (c *hwmonCollector) Update(ch chan<- prometheus.Metric) error {
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
		ms, err := hwmonMetrics(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		for _, m := range ms {
			ch <- m
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

func hwmonMetrics(dir string) ([]prometheus.Metric, error) {
	// Sensor files live in the hwmon directory or, on older kernels, in
	// its device directory.
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	chip := hwmonChip(dir)
	var out []prometheus.Metric
	if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil {
		out = append(out, prometheus.MustNewConstMetric(hwmonChipNames, prometheus.GaugeValue, 1, chip, strings.TrimSpace(string(b))))
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		m := hwmonTempFile.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue // sensors that cannot be read right now (EAGAIN, ENODATA) are skipped
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
		}
		out = append(out, prometheus.MustNewConstMetric(hwmonTempDescs[m[2]], prometheus.GaugeValue, v/1000, chip, "temp"+m[1]))
	}
	return out, nil
}
