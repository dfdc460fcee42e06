package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	xlog "github.com/xtls/xray-core/common/log"
	"github.com/xtls/xray-core/core"
	fstats "github.com/xtls/xray-core/features/stats"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/service"
)

// Name is the service's config section.
const Name = "proxy"

// Service runs the in-process xray client. It is a service.Service.
type Service struct {
	env   service.Env
	cfg   Config
	log   *slog.Logger
	clock service.Clock
	// probes carries on-demand probe requests (POST /v1/proxy/test) to Serve.
	probes chan probeRequest

	mu   sync.Mutex
	inst *core.Instance // nil when not running
	st   Details
}

var (
	_ service.Service  = (*Service)(nil)
	_ service.LocalAPI = (*Service)(nil)
)

// New checks the config and returns the service; nothing is started and no
// secret is read until Serve.
func New(env service.Env, cfg Config) (*Service, error) {
	v := confkit.NewValidator("")
	cfg.Validate(v)
	if errs := v.Errors(); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Path + ": " + e.Msg
		}
		return nil, fmt.Errorf("proxy config: %s", strings.Join(msgs, "; "))
	}
	env = env.WithDefaults()
	s := &Service{
		env:    env,
		cfg:    cfg,
		log:    env.Logger,
		clock:  env.Clock,
		probes: make(chan probeRequest),
		st: Details{
			State:   StateStopped,
			SOCKS:   cfg.SOCKS.Listen,
			HTTP:    cfg.HTTP.Listen,
			Traffic: map[string]Traffic{},
		},
	}
	if err := env.Metrics.Register(newCollector(s)); err != nil {
		return nil, fmt.Errorf("register proxy metrics: %w", err)
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return Name }

// Serve resolves the server secrets, starts xray's SOCKS5 and HTTP inbounds
// and probes the server every health_interval until ctx is done. At each
// probe the secrets are read again: when they changed, the xray instance
// is replaced (only the proxy restarts, nothing else in hostd).
func (s *Service) Serve(ctx context.Context) error {
	set, err := resolve(ctx, s.env.Secrets, s.cfg)
	if err != nil {
		s.setError(err)
		return fmt.Errorf("read proxy secrets: %w", err)
	}
	// xray's log sink is process-wide; hostd runs one proxy, whose logger
	// receives xray's own messages.
	xlog.RegisterHandler(logHandler{log: s.log})
	for {
		next, err := s.run(ctx, set)
		if err != nil || next == nil {
			return err
		}
		s.log.Info("proxy secrets changed: restarting xray", "server", next.Server.hostPort())
		set = *next
	}
}

// run runs one xray instance built from set until ctx is done (nil, nil)
// or the secrets change (the new settings, nil).
func (s *Service) run(ctx context.Context, set settings) (*settings, error) {
	xc, err := xrayConfig(set)
	if err != nil {
		s.setError(err)
		return nil, fmt.Errorf("build xray config: %w", err)
	}
	if err := checkUDPFree(set); err != nil {
		s.setError(err)
		return nil, err
	}
	inst, err := core.New(xc)
	if err != nil {
		err = fmt.Errorf("create xray instance: %w", err)
		s.setError(err)
		return nil, service.Permanent(err)
	}
	if err := inst.Start(); err != nil {
		inst.Close()
		err = startError(err, set)
		s.setError(err)
		return nil, err
	}
	defer func() {
		if err := inst.Close(); err != nil {
			s.log.Warn("close xray instance", "err", err)
		}
	}()

	s.mu.Lock()
	s.inst = inst
	s.st.State = StateStarting
	s.st.Server = set.Server.hostPort()
	s.st.LastError = ""
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.collectTrafficLocked()
		s.inst = nil
		s.st.State = StateStopped
		s.mu.Unlock()
	}()
	s.log.Info("proxy started", "server", set.Server.hostPort(), "socks", set.SocksListen, "http", set.HTTPListen)

	p := &prober{inst: inst, set: set, url: s.cfg.HealthURL, timeout: s.cfg.HealthTimeout}
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	s.record(p.probe(ctx))
	for {
		select {
		case <-ctx.Done():
			s.log.Info("proxy stopped")
			return nil, nil
		case <-t.C:
			cur, err := resolve(ctx, s.env.Secrets, s.cfg)
			if err != nil {
				// Keep running on the secrets already read; say why they
				// could not be read again.
				s.log.Warn("read proxy secrets again", "err", err)
			} else if !reflect.DeepEqual(cur, set) {
				return &cur, nil
			}
			s.record(p.probe(ctx))
		case req := <-s.probes:
			req.reply <- s.record(p.probe(req.ctx))
		}
	}
}

// startError turns xray's start failure into one that names the option
// whose address is in use: "proxy.socks.listen 127.0.0.1:1080: address in
// use". The instance has been closed, so each address is tried again
// (without SO_REUSEPORT) to find the one that is taken.
func startError(err error, set settings) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		for _, l := range inboundListens(set) {
			ln, lerr := net.Listen("tcp", l.addr)
			if lerr != nil {
				return errAddrInUse(l, "tcp")
			}
			ln.Close()
		}
		return fmt.Errorf("start xray: a listen address is in use: %w", err)
	}
	return fmt.Errorf("start xray: %w", err)
}

// ErrNotRunning is returned by Probe when the proxy is not running.
var ErrNotRunning = errors.New("proxy is not running")

// Probe runs a health probe now, through the running instance.
func (s *Service) Probe(ctx context.Context) (ProbeResult, error) {
	s.mu.Lock()
	running := s.inst != nil
	s.mu.Unlock()
	if !running {
		return ProbeResult{}, ErrNotRunning
	}
	reply := make(chan ProbeResult, 1)
	select {
	case s.probes <- probeRequest{ctx: ctx, reply: reply}:
	case <-ctx.Done():
		return ProbeResult{}, ctx.Err()
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return ProbeResult{}, ctx.Err()
	}
}

type probeRequest struct {
	ctx   context.Context
	reply chan ProbeResult
}

// record stamps a probe result with the time, keeps it as the last probe
// and reports health; it returns the stamped result.
func (s *Service) record(r ProbeResult) ProbeResult {
	r.At = s.clock.Now()
	s.mu.Lock()
	prev := s.st.State
	s.st.LastProbe = &r
	if r.OK {
		s.st.State = StateUp
		s.st.LastError = ""
		s.st.ProbesOK++
	} else {
		s.st.State = StateDown
		s.st.LastError = r.Error
		s.st.ProbesFailed++
	}
	s.mu.Unlock()
	if r.OK {
		if prev != StateUp {
			s.log.Info("proxy server reachable", "latency", r.Latency())
		}
		s.env.Health.Ready()
		return r
	}
	if prev != StateDown {
		s.log.Warn("proxy server unreachable", "reason", r.Error)
	}
	s.env.Health.Degraded(errors.New(r.Error))
	return r
}

func (s *Service) setError(err error) {
	s.mu.Lock()
	s.st.State = StateFailed
	s.st.LastError = err.Error()
	s.mu.Unlock()
}

// collectTrafficLocked copies xray's traffic counters ("inbound>>>socks>>>traffic>>>uplink")
// into the status; s.mu is held.
func (s *Service) collectTrafficLocked() {
	if s.inst == nil {
		return
	}
	m, ok := s.inst.GetFeature(fstats.ManagerType()).(fstats.Manager)
	if !ok {
		return
	}
	tr := map[string]Traffic{}
	for _, kind := range []string{"inbound", "outbound"} {
		for _, tag := range []string{tagSOCKS, tagHTTP, tagProxy, tagDirect} {
			up := m.GetCounter(kind + ">>>" + tag + ">>>traffic>>>uplink")
			down := m.GetCounter(kind + ">>>" + tag + ">>>traffic>>>downlink")
			if up == nil && down == nil {
				continue
			}
			var t Traffic
			if up != nil {
				t.Up = up.Value()
			}
			if down != nil {
				t.Down = down.Value()
			}
			tr[kind+"/"+tag] = t
		}
	}
	s.st.Traffic = tr
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	d := s.Details()
	return service.Status{Summary: d.Summary(), Details: d}
}

// Details is a snapshot of the proxy's state.
func (s *Service) Details() Details {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collectTrafficLocked()
	d := s.st
	d.Traffic = make(map[string]Traffic, len(s.st.Traffic))
	for k, v := range s.st.Traffic {
		d.Traffic[k] = v
	}
	if s.st.LastProbe != nil {
		p := *s.st.LastProbe
		d.LastProbe = &p
	}
	return d
}

// logHandler forwards xray's log messages to the service's logger: errors
// as warnings, warnings (which include xray's start banner) as info, info
// at debug level; xray's debug messages are dropped, and so are access log
// lines (every destination a client visits).
type logHandler struct{ log *slog.Logger }

func (h logHandler) Handle(msg xlog.Message) {
	m, ok := msg.(*xlog.GeneralMessage)
	if !ok {
		return
	}
	switch m.Severity {
	case xlog.Severity_Error:
		h.log.Warn("xray: " + fmt.Sprint(m.Content))
	case xlog.Severity_Warning:
		h.log.Info("xray: " + fmt.Sprint(m.Content))
	case xlog.Severity_Info:
		h.log.Debug("xray: " + fmt.Sprint(m.Content))
	}
}
