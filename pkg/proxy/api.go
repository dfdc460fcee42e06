package proxy

import (
	"context"
	"net/http"

	"github.com/hostd/hostd/internal/api"
)

// LocalAPI implements service.LocalAPI:
//
//	GET  /v1/proxy/status  Details
//	POST /v1/proxy/test    ProbeResult of a health probe run now
func (s *Service) LocalAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/proxy/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, s.Details())
	})
	mux.Handle("POST /v1/proxy/test", api.RequireWriter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*s.cfg.HealthTimeout)
		defer cancel()
		res, err := s.Probe(ctx)
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, res)
	})))
	return mux
}
