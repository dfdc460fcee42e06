package daemontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/service"
)

// Config is a fault service's config section.
type Config struct {
	// Enable turns the service on. Default: true.
	Enable bool `yaml:"enable"`
	// Mode is ok, panic, error, hang (ignores cancellation), degraded or
	// burst (once ready, one burst of work under env.LimitMemory, then
	// env.ReleaseMemory, as a backup job). panic, error and degraded
	// apply only while FaultFile exists (always when FaultFile is empty).
	// Default: ok.
	Mode string `yaml:"mode"`
	// FaultFile switches the fault on while it exists.
	FaultFile string `yaml:"fault_file"`
	// Listen is an address the service binds, to test port checks.
	Listen string `yaml:"listen"`
	// Needs names services this one waits for.
	Needs []string `yaml:"needs"`
	// Delay is how long the service takes to become ready.
	Delay time.Duration `yaml:"delay"`
	// Token is a secret-looking value, to test redaction.
	Token string `yaml:"token"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Enable: true, Mode: "ok"} }

// Validate implements the config contract.
func (c *Config) Validate(v *confkit.Validator) {
	switch c.Mode {
	case "ok", "panic", "error", "hang", "degraded", "burst":
	default:
		v.Errorf("mode", "must be ok, panic, error, hang, degraded or burst, not %q", c.Mode)
	}
	v.CheckListen("listen", c.Listen)
}

// Service is the controllable service.
type Service struct {
	name string
	env  service.Env
	cfg  Config
	runs prometheus.Counter
}

var _ service.Service = (*Service)(nil)
var _ service.Dependent = (*Service)(nil)

// New builds a fault service.
func New(name string) func(env service.Env, cfg Config) (*Service, error) {
	return func(env service.Env, cfg Config) (*Service, error) {
		s := &Service{name: name, env: env, cfg: cfg, runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hostd_test_runs_total", Help: "Times the test service was started.",
			ConstLabels: prometheus.Labels{"name": name},
		})}
		if err := env.Metrics.Register(s.runs); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// Registration returns the daemon registration of a fault service.
func Registration(name string) daemon.Registration {
	return daemon.Register(name, DefaultConfig, New(name))
}

// Name implements service.Service.
func (s *Service) Name() string { return s.name }

// Needs implements service.Dependent.
func (s *Service) Needs() []string { return s.cfg.Needs }

func (s *Service) faulty() bool {
	if s.cfg.FaultFile == "" {
		return true
	}
	_, err := os.Stat(s.cfg.FaultFile)
	return err == nil
}

// Serve implements service.Service.
func (s *Service) Serve(ctx context.Context) error {
	s.runs.Inc()
	if s.cfg.Delay > 0 {
		select {
		case <-time.After(s.cfg.Delay):
		case <-ctx.Done():
			return nil
		}
	}
	switch s.cfg.Mode {
	case "panic":
		if s.faulty() {
			panic("test fault: " + s.name)
		}
	case "error":
		if s.faulty() {
			return errors.New("test fault: " + s.name + " failed")
		}
	case "hang":
		s.env.Health.Ready()
		select {} // ignores ctx on purpose
	}
	s.env.Health.Ready()
	if s.cfg.Mode == "burst" && s.env.LimitMemory != nil && s.env.ReleaseMemory != nil {
		restore := s.env.LimitMemory(1 << 20)
		restore()
		s.env.ReleaseMemory()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if s.cfg.Mode == "degraded" {
			if s.faulty() {
				s.env.Health.Degraded(fmt.Errorf("test fault: %s degraded", s.name))
			} else {
				s.env.Health.Ready()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	return service.Status{Summary: "mode " + s.cfg.Mode, Details: map[string]string{"mode": s.cfg.Mode}}
}
