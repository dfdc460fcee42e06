package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

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
// again only when its path, inode, size or mtime changes.
type osCollector struct {
	h *host

	mu      sync.Mutex
	lastKey osFileKey // the file parsed
	info    []string  // osInfoDesc's label values from it
	version []string  // osVersionDesc's, nil without a version
	ver     float64
}

// osFileKey tells whether os-release changed: its path, inode, size and
// modification time.
type osFileKey struct {
	path        string
	ino         uint64
	size, mtime int64
}

func newOSCollector(h *host) (collector, error) { return &osCollector{h: h}, nil }

func (c *osCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.read(); err != nil {
		return err
	}
	ch(c.h.series.metric(osInfoDesc, prometheus.GaugeValue, 1, c.info...))
	if c.version != nil {
		ch(c.h.series.metric(osVersionDesc, prometheus.GaugeValue, c.ver, c.version...))
	}
	return nil
}

// read parses os-release into c's label values when it changed since the
// last read (a stat(2) a scrape otherwise).
func (c *osCollector) read() error {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		path := c.h.paths.join(c.h.opts.RootPath, []string{p})
		var st unix.Stat_t
		err := unix.Stat(path, &st)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read os-release: %w", &fs.PathError{Op: "stat", Path: path, Err: err})
		}
		key := osFileKey{path: path, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
		if key == c.lastKey {
			return nil
		}
		b, err := safefile.Read(path, 64<<10)
		if err != nil {
			return fmt.Errorf("read os-release: %w", err)
		}
		kv := parseOSRelease(b)
		c.info = make([]string, len(osInfoLabels))
		for i, l := range osInfoLabels {
			c.info[i] = kv[strings.ToUpper(l)]
		}
		c.version = nil
		if v := osVersionRE.FindString(kv["VERSION_ID"]); v != "" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				c.ver, c.version = f, []string{kv["ID"], kv["ID_LIKE"], kv["NAME"]}
			}
		}
		c.lastKey = key
		return nil
	}
	return fmt.Errorf("read os-release: no %s or %s", filepath.Join(c.h.opts.RootPath, "etc/os-release"), filepath.Join(c.h.opts.RootPath, "usr/lib/os-release"))
}

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
