package proxy

import (
	"context"
	"net/http"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
)

// Routes implements service.LocalAPI.
func (s *Service) Routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteProxyStatus, Access: service.Read, Handler: s.handleStatus,
			Doc: "the service's details (Details)"},
		{Method: http.MethodPost, Path: api.RouteProxyTest, Access: service.Write, Handler: s.handleTest,
			Doc: "probe the proxy now (ProbeResult)"},
	}
}

// LocalAPI serves Routes on their own, with the daemon's permission
// checks, for tests that serve one service.
func (s *Service) LocalAPI() http.Handler { return service.NewMux(s.Routes()) }

func (s *Service) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.Details())
}

// handleTest runs a health probe now, bounded by twice
// proxy.health_timeout.
func (s *Service) handleTest(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.HealthTimeout)
	defer cancel()
	res, err := s.Probe(ctx)
	if err != nil {
		api.WriteError(w, http.StatusServiceUnavailable, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}
