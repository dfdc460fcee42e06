package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/internal/testenv/xraytest"
)

// destHost is the name the test xray server maps to the destination
// server; the client does not treat it as private, so it goes through the
// server.
const destHost = "dest.hostd.test"

// world is one test setup: a destination HTTP server, an xray
// VLESS+REALITY server that maps destHost to it, and secret files holding
// the server's details.
type world struct {
	dest     *httptest.Server
	hits     atomic.Int64
	xray     *xraytest.Xray
	dir      string
	resolver *secrets.Resolver
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.dest = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.hits.Add(1)
		if r.URL.Path == "/big" {
			rw.Write(bytes.Repeat([]byte("x"), 1<<20))
			return
		}
		if r.URL.Path == "/generate_204" {
			rw.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(rw, "hello from dest %s", r.URL.Path)
	}))
	t.Cleanup(w.dest.Close)
	w.xray = xraytest.StartXray(t, xraytest.XrayOptions{Hosts: map[string]string{destHost: w.dest.Listener.Addr().String()}})
	w.resolver = secrets.NewResolver(w.dir, "")
	return w
}

// writeSecret stores a secret in a file and returns its reference.
func (w *world) writeSecret(t testing.TB, name, value string) secrets.Ref {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secrets.Ref("file:" + name)
}

// config is a proxy config for the world's server on free ports, with
// user_id, public_key and short_id as secret references.
func (w *world) config(t testing.TB) Config {
	t.Helper()
	c := DefaultConfig()
	c.Enable = true
	c.SOCKS.Listen = testenv.FreeAddr(t)
	c.HTTP.Listen = testenv.FreeAddr(t)
	c.Server = ServerConfig{
		Address:   Value{Literal: w.xray.Host},
		Port:      Value{Literal: fmt.Sprint(w.xray.Port)},
		UserID:    Value{Ref: w.writeSecret(t, "user_id", w.xray.UserID)},
		PublicKey: Value{Ref: w.writeSecret(t, "public_key", w.xray.PublicKey)},
		ShortID:   Value{Ref: w.writeSecret(t, "short_id", w.xray.ShortID)},
	}
	c.ServerName = w.xray.ServerName
	c.HealthURL = "http://" + destHost + "/generate_204"
	c.HealthInterval = time.Hour // probes are triggered by the tests
	c.HealthTimeout = 5 * time.Second
	return c
}

// secretValues are the values that must never appear in output.
func (w *world) secretValues() []string {
	return []string{w.xray.UserID, w.xray.PublicKey, w.xray.PrivateKey, w.xray.ShortID}
}

// running is a started proxy service.
type running struct {
	svc    *Service
	health *servicetest.Health
	logs   *servicetest.Logs
	reg    *prometheus.Registry
	done   chan error
}

// start runs the service until the test ends.
func start(t testing.TB, w *world, cfg Config) *running {
	t.Helper()
	r := &running{health: &servicetest.Health{}, logs: &servicetest.Logs{}, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	env := service.Env{
		Logger:   r.logs.Logger(Name),
		StateDir: t.TempDir(),
		Metrics:  r.reg,
		Gatherer: r.reg,
		Secrets:  w.resolver,
		Health:   r.health,
	}
	svc, err := New(env, cfg)
	if err != nil {
		t.Fatalf("new proxy: %v", err)
	}
	r.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- svc.Serve(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy logs:\n%s", r.logs.String())
		}
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("proxy did not stop within 10s")
		}
	})
	return r
}

// waitState waits until the proxy reaches one of the states.
func (r *running) waitState(t testing.TB, states ...string) Details {
	t.Helper()
	var d Details
	testenv.WaitFor(t, 20*time.Second, func() error {
		d = r.svc.Details()
		for _, s := range states {
			if d.State == s {
				return nil
			}
		}
		return fmt.Errorf("state %s (%s), want %v", d.State, d.LastError, states)
	})
	return d
}

// curl fetches url through a proxy with the real curl client.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.LookPath(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--fail", "--max-time", "15", "--noproxy", ""}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no *_proxy variables
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("curl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.String(), nil
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// testEnv is an Env for constructing a service that is not run: New
// fills in the rest.
func testEnv() service.Env { return service.Env{} }
