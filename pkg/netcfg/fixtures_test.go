package netcfg_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg"
)

// waitHealth waits up to d for the service's latest health report to
// match.
func waitHealth(t *testing.T, s *running, d time.Duration, match func(servicetest.Report) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := s.health.Wait(ctx, match); err != nil {
		t.Fatal(err)
	}
}

// running is a service under test.
type running struct {
	*netcfg.Service
	health *servicetest.Health
	reg    *prometheus.Registry
	state  string
	client *api.Client
	stop   func() error // cancels Serve and returns its error
	cfg    netcfg.Config
}

// cfgUpstream is the address of the i-th default upstream.
func (r *running) cfgUpstream(i int) string { return r.cfg.DNS.Upstreams[i].Address }

// startService builds the service from cfg and serves it (and its local
// API on a unix socket) until the test ends or stop is called.
func startService(t *testing.T, cfg netcfg.Config) *running {
	t.Helper()
	return startServiceIn(t, cfg, nil)
}

// startServiceIn is startService with prepare run on the state dir first.
func startServiceIn(t *testing.T, cfg netcfg.Config, prepare func(stateDir string)) *running {
	t.Helper()
	h := &servicetest.Health{}
	reg := prometheus.NewRegistry()
	dir := testenv.TempDir(t)
	if prepare != nil {
		prepare(dir)
	}
	s, err := netcfg.New(service.Env{
		Logger:   testLogger(t),
		StateDir: dir,
		Metrics:  reg,
		Gatherer: reg,
		Health:   h,
	}, cfg)
	if err != nil {
		t.Fatalf("new netcfg: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("serve returned: %v", err)
		}
	})

	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.LocalAPI(), ConnContext: api.ConnContext}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &running{Service: s, health: h, reg: reg, state: dir, client: api.NewClient(sock), stop: stop, cfg: cfg}
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("service", "netcfg")
}

// gauge returns the unlabelled metric name from the service's registry.
func gauge(t *testing.T, s *running, name string) prometheus.Collector {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			v := mf.GetMetric()[0].GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// startDNSAt serves DNS over UDP on addr (in process) until the test
// ends: A queries get 192.0.2.1, everything else an empty answer.
func startDNSAt(t *testing.T, addr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
}
