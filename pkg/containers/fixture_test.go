package containers

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// nameLabel marks every test object with a logical name, so twin setups
// compare by name even for objects Docker names at random.
const nameLabel = "hostd.test.name"

// nextHealth waits for the next health report not seen yet that is ready
// (or, with degraded, degraded) and returns its reason.
func nextHealth(t *testing.T, h *servicetest.Health, degraded bool, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	match := servicetest.IsReady
	if degraded {
		match = servicetest.IsDegraded("")
	}
	r, err := h.Next(ctx, match)
	if err != nil {
		t.Fatal(err)
	}
	return r.Err
}

// newTestService builds a service for the daemon at host.
func newTestService(t *testing.T, host string, cfg Config, stateDir string, h service.Health) (*Service, *prometheus.Registry) {
	t.Helper()
	cfg.Host = host
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	env := service.Env{
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", Name),
		StateDir: stateDir,
		Metrics:  reg,
		Gatherer: reg,
		Health:   h,
	}
	s, err := New(env, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.reconnect = service.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	t.Cleanup(func() { s.eng.Close() })
	return s, reg
}

// apiClient is a moby client for checks from the test side.
func apiClient(t *testing.T, d *testenv.Docker) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var buildContextName = regexp.MustCompile(`build-context-[a-z0-9]+`)

// inventory lists the daemon's objects as "kind/name", images and volumes
// by their nameLabel (falling back to the first tag or the volume name).
func inventory(t *testing.T, c *client.Client) map[string]bool {
	t.Helper()
	ctx := context.Background()
	out := map[string]bool{}
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cs.Items {
		out["container/"+strings.TrimPrefix(x.Names[0], "/")] = true
	}
	is, err := c.ImageList(ctx, client.ImageListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range is.Items {
		name := x.Labels[nameLabel]
		if name == "" && len(x.RepoTags) > 0 {
			name = x.RepoTags[0]
		}
		out["image/"+name] = true
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ns.Items {
		if !predefinedNetwork(x.Name) {
			out["network/"+x.Name] = true
		}
	}
	du, err := c.DiskUsage(ctx, client.DiskUsageOptions{BuildCache: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range du.BuildCache.Items {
		// Records differ between twins only by random context names.
		desc := buildContextName.ReplaceAllString(b.Description, "build-context")
		key := fmt.Sprintf("build_cache/%s:%s:%d", b.Type, desc, b.Size)
		for n := 2; out[key]; n++ {
			key = fmt.Sprintf("build_cache/%s:%s:%d#%d", b.Type, desc, b.Size, n)
		}
		out[key] = true
	}
	vs, err := c.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range vs.Items {
		name := x.Labels[nameLabel]
		if name == "" {
			name = x.Name
		}
		out["volume/"+name] = true
	}
	return out
}

// wipe removes every container, image, network, volume and build cache
// record.
func wipe(t *testing.T, d *testenv.Docker) {
	t.Helper()
	for _, list := range [][]string{
		{"ps", "-aq"}, {"images", "-aq"}, {"network", "ls", "-q", "--filter", "type=custom"}, {"volume", "ls", "-q"},
	} {
		out := d.CLI(t, list...)
		if out == "" {
			continue
		}
		ids := strings.Fields(out)
		var rm []string
		switch list[0] {
		case "ps":
			rm = []string{"rm", "-f", "-v"}
		case "images":
			rm = []string{"rmi", "-f"}
		case "network":
			rm = []string{"network", "rm"}
		case "volume":
			rm = []string{"volume", "rm", "-f"}
		}
		if _, err := d.Run(nil, append(rm, ids...)...); err != nil && list[0] != "images" {
			t.Fatal(err)
		}
	}
	d.CLI(t, "builder", "prune", "-a", "-f")
	// rmi -f of a list can trip over its own removals; what is left goes now.
	if out := d.CLI(t, "images", "-aq"); out != "" {
		d.CLI(t, append([]string{"rmi", "-f"}, strings.Fields(out)...)...)
	}
}

func diff(want, got map[string]bool) (missing, extra []string) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	return missing, extra
}

func setOf(items ...string) map[string]bool {
	m := map[string]bool{}
	for _, i := range items {
		m[i] = true
	}
	return m
}

func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if !b[k] {
			out[k] = true
		}
	}
	return out
}

// metricValue reads one sample, named as in the exposition format with
// labels sorted ("name{a="x",b="y"}").
func metricValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			if key != name {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// serveAPI serves s.LocalAPI on a unix socket the way the daemon does
// (peer credentials recorded) and returns a client for it.
func serveAPI(t *testing.T, s *Service) *api.Client {
	t.Helper()
	sock := filepath.Join(testenv.TempDir(t), "hostd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.LocalAPI(), ConnContext: api.ConnContext}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return api.NewClient(sock)
}
