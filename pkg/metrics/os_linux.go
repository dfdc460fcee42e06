package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/safefile"
)

func init() { registerCollector("os", newOSCollector) }

var (
	osInfoLabels = []string{"build_id", "id", "id_like", "image_id", "image_version", "name", "pretty_name",
		"variant", "variant_id", "version", "version_codename", "version_id"}
	osInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "os", "info"),
		"A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
		osInfoLabels, nil)
	osVersionDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "os", "version"),
		"Metric containing the major.minor part of the OS version.", []string{"id", "id_like", "name"}, nil)
	osVersionRE = regexp.MustCompile(`^[0-9]+\.?[0-9]*`)
)

// osCollector exports os-release(5) of the host (under root_path), as
// node_exporter does: node_os_info and node_os_version. The file is parsed
// again only when its path, size or mtime changes.
type osCollector struct {
	h *host

	mu      sync.Mutex
	lastKey string            // path, size and mtime of the file parsed
	last    map[string]string // its fields
}

func newOSCollector(h *host) (collector, error) { return &osCollector{h: h}, nil }

func (c *osCollector) Update(ch emitter) error {
	kv, err := c.read()
	if err != nil {
		return err
	}
	vals := make([]string, len(osInfoLabels))
	for i, l := range osInfoLabels {
		vals[i] = kv[strings.ToUpper(l)]
	}
	ch(c.h.series.metric(osInfoDesc, prometheus.GaugeValue, 1, vals...))
	if v := osVersionRE.FindString(kv["VERSION_ID"]); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			ch(c.h.series.metric(osVersionDesc, prometheus.GaugeValue, f, kv["ID"], kv["ID_LIKE"], kv["NAME"]))
		}
	}
	return nil
}

func (c *osCollector) read() (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		path := filepath.Join(c.h.opts.RootPath, p)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read os-release: %w", err)
		}
		key := fmt.Sprint(path, st.Size(), st.ModTime().UnixNano())
		if key == c.lastKey {
			return c.last, nil
		}
		b, err := safefile.Read(path, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("read os-release: %w", err)
		}
		c.lastKey, c.last = key, parseOSRelease(b)
		return c.last, nil
	}
	return nil, fmt.Errorf("read os-release: no %s or %s", filepath.Join(c.h.opts.RootPath, "etc/os-release"), filepath.Join(c.h.opts.RootPath, "usr/lib/os-release"))
}

// parseOSRelease reads KEY=value lines, the value optionally in single or
// double quotes with shell escapes; comments and blank lines are skipped.
func parseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				var sb strings.Builder
				for i := 0; i < len(v); i++ {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					sb.WriteByte(v[i])
				}
				v = sb.String()
			}
		}
		out[k] = v
	}
	return out
}
