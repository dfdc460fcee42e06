package service_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

func TestEnvWithDefaults(t *testing.T) {
	fake := servicetest.NewFakeClock(t0)
	fixed := func() time.Time { return t0.Add(time.Hour) }
	health := &servicetest.Health{}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	cases := []struct {
		name    string
		env     service.Env
		wantNow time.Time // zero: the real time
		check   func(t *testing.T, e service.Env)
	}{
		{name: "empty", env: service.Env{}, check: func(t *testing.T, e service.Env) {
			if _, ok := e.Clock.(service.RealClock); !ok {
				t.Errorf("Clock = %T, want RealClock", e.Clock)
			}
			if _, ok := e.Health.(service.NopHealth); !ok {
				t.Errorf("Health = %T, want NopHealth", e.Health)
			}
			if e.Metrics == nil || e.Gatherer == nil || e.Metrics.(prometheus.Gatherer) != e.Gatherer {
				t.Errorf("Metrics %v and Gatherer %v: want one fresh registry", e.Metrics, e.Gatherer)
			}
		}},
		{name: "clock", env: service.Env{Clock: fake}, wantNow: t0},
		{name: "now only", env: service.Env{Now: fixed}, wantNow: t0.Add(time.Hour)},
		{name: "clock wins over now", env: service.Env{Clock: fake, Now: fixed}, wantNow: t0},
		{name: "set fields kept", env: service.Env{Logger: logger, Health: health, Metrics: reg, StateDir: "/x"}, check: func(t *testing.T, e service.Env) {
			if e.Logger != logger || e.Health != health || e.Metrics != reg || e.StateDir != "/x" {
				t.Errorf("WithDefaults replaced a field that was set: %+v", e)
			}
			if e.Gatherer != nil {
				t.Errorf("Gatherer = %v, want it left unset beside a given Metrics", e.Gatherer)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.env.WithDefaults()
			if e.Logger == nil || e.Clock == nil || e.Now == nil || e.Health == nil || e.Metrics == nil {
				t.Fatalf("WithDefaults left a field unset: %+v", e)
			}
			if !c.wantNow.IsZero() {
				if got := e.Clock.Now(); !got.Equal(c.wantNow) {
					t.Errorf("Clock.Now() = %s, want %s", got, c.wantNow)
				}
				if got := e.Now(); !got.Equal(c.wantNow) {
					t.Errorf("Now() = %s, want %s (the same as Clock)", got, c.wantNow)
				}
			}
			if c.check != nil {
				c.check(t, e)
			}
			e.Health.Degraded(errors.New("x")) // never nil to call
		})
	}
}
