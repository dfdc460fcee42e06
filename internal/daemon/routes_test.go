package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
)

// echoService is a fault service with a route table: a read route that
// names the instance and a write route.
type echoService struct {
	*daemontest.Service
	id int64
}

var echoInstances atomic.Int64

func (s *echoService) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: "/v1/echo/id", Access: service.Read, Doc: "the instance",
			Handler: func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, s.id) }},
		{Method: http.MethodPost, Path: "/v1/echo/poke", Access: service.Write, Doc: "poke it",
			Handler: func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, "poked") }},
	}
}

func echoRegistration(name string) daemon.Registration {
	return daemon.Register(name, daemontest.DefaultConfig, func(env service.Env, cfg daemontest.Config) (*echoService, error) {
		s, err := daemontest.New(name)(env, cfg)
		if err != nil {
			return nil, err
		}
		return &echoService{Service: s, id: echoInstances.Add(1)}, nil
	})
}

// TestRouteTable serves the daemon's table and a service's through the
// socket, as root: every declared route answers, unknown paths and
// methods are 404 and 405, a service without routes or not running is
// told apart, and a new instance of a service serves its own table.
func TestRouteTable(t *testing.T) {
	td := daemontest.Start(t, daemontest.Options{
		Registrations: []daemon.Registration{
			daemontest.Registration("alpha"), echoRegistration("echo"), echoRegistration("off"),
		},
		Sections: "alpha: {}\necho: {}\noff:\n  enable: false\n",
	})
	c := td.Client()
	ctx := context.Background()

	var table []api.RouteInfo
	if err := c.Get(ctx, api.RouteRoutes, &table); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"GET " + api.RouteStatus:        "read",
		"GET " + api.RouteVersion:       "read",
		"GET " + api.RouteConfig:        "read",
		"POST " + api.RouteConfigReload: "write",
		"GET " + api.RouteRoutes:        "read",
		"GET /v1/echo/id [echo]":        "read",
		"POST /v1/echo/poke [echo]":     "write",
	}
	got := map[string]string{}
	for _, r := range table {
		key := r.Method + " " + r.Path
		if r.Service != "" {
			key += " [" + r.Service + "]"
		}
		got[key] = r.Access
		if r.Doc == "" {
			t.Errorf("%s has no doc", key)
		}
	}
	if len(got) != len(want) {
		t.Errorf("route table %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("route %s: access %q, want %q", k, got[k], v)
		}
	}

	var id int64
	if err := c.Get(ctx, "/v1/echo/id", &id); err != nil || id == 0 {
		t.Fatalf("GET /v1/echo/id: %d, %v", id, err)
	}
	if err := c.Post(ctx, "/v1/echo/poke", nil, nil); err != nil {
		t.Errorf("POST /v1/echo/poke as root: %v", err)
	}

	for _, tc := range []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/v1/nope", 404, "no route GET /v1/nope"},
		{"GET", "/v1/status/x", 404, `no service "status"`},
		{"POST", api.RouteStatus, 405, "method not allowed (allowed: GET, HEAD)"},
		{"GET", api.RouteConfigReload, 405, "method not allowed (allowed: POST)"},
		{"GET", "/v1/nosuch/x", 404, `no service "nosuch"`},
		{"GET", "/v1/alpha/status", 404, "service alpha has no API"},
		{"GET", "/v1/off/id", 503, "service off is not enabled (set off.enable: true in the config)"},
		{"POST", "/v1/off/poke", 503, "service off is not enabled"},
		{"GET", "/v1/echo/nope", 404, "no route GET /v1/echo/nope"},
		{"GET", "/v1/echo/poke", 405, "method not allowed (allowed: POST)"},
	} {
		var in any
		if tc.method == "POST" {
			in = struct{}{}
		}
		_, err := c.Raw(ctx, tc.method, tc.path, in)
		var he *api.HTTPError
		if !errors.As(err, &he) || he.Code != tc.code || !strings.Contains(he.Msg, tc.msg) {
			t.Errorf("%s %s: %v, want %d %q", tc.method, tc.path, err, tc.code, tc.msg)
		}
	}

	// A changed section builds a new instance, which serves its own table.
	cfg, err := os.ReadFile(td.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "echo: {}", "echo:\n  delay: 1ms", 1))
	if err := os.WriteFile(td.ConfigFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var res api.ConfigReload
	if err := c.Post(ctx, api.RouteConfigReload, nil, &res); err != nil {
		t.Fatalf("reload: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		var now int64
		if err := c.Get(ctx, "/v1/echo/id", &now); err != nil {
			return err
		}
		if now == id {
			return errors.New("still the old instance")
		}
		return nil
	})
}
