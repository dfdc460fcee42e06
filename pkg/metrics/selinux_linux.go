package metrics

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

func init() { registerCollector("selinux", newSELinuxCollector) }

var (
	selinuxEnabledDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "selinux", "enabled"),
		"SELinux is enabled, 1 is true, 0 is false", nil, nil)
	selinuxConfigModeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "selinux", "config_mode"),
		"Configured SELinux enforcement mode", nil, nil)
	selinuxCurrentModeDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "selinux", "current_mode"),
		"Current SELinux enforcement mode", nil, nil)
)

// selinuxCollector reports whether SELinux is on (selinuxfs mounted at
// /sys/fs/selinux) and, if it is, its configured and current modes:
// 1 enforcing, 0 permissive, -1 disabled.
type selinuxCollector struct{ h *host }

func newSELinuxCollector(h *host) (collector, error) { return &selinuxCollector{h: h}, nil }

func (c *selinuxCollector) Update(ch emitter) error {
	enforce, err := c.h.files.readNumberFile(c.h.sysPath("fs", "selinux", "enforce"))
	if err != nil {
		ch(c.h.series.metric(selinuxEnabledDesc, prometheus.GaugeValue, 0))
		return nil
	}
	ch(c.h.series.metric(selinuxEnabledDesc, prometheus.GaugeValue, 1))
	ch(c.h.series.metric(selinuxCurrentModeDesc, prometheus.GaugeValue, enforce))
	mode := -1.0
	if b, err := os.ReadFile(filepath.Join(c.h.opts.RootPath, "etc", "selinux", "config")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SELINUX="); ok {
				switch strings.ToLower(strings.TrimSpace(v)) {
				case "enforcing":
					mode = 1
				case "permissive":
					mode = 0
				}
			}
		}
	}
	ch(c.h.series.metric(selinuxConfigModeDesc, prometheus.GaugeValue, mode))
	return nil
}
