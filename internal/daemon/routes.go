package daemon

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/service"
)

// socketHandler is the local API's route table.
func (d *Daemon) socketHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, api.Version{Version: d.opts.Version, GoVersion: runtime.Version()})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		cfg := d.cfg
		d.mu.Unlock()
		show, ctype := cfg.Show, "application/yaml"
		if r.URL.Query().Get("format") == "json" {
			show, ctype = cfg.ShowJSON, "application/json"
		}
		b, err := show()
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(b)
	})
	mux.Handle("POST /v1/config/reload", api.RequireWriter(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := d.reload(r.Context())
		if err != nil {
			api.WriteError(w, http.StatusServiceUnavailable, err)
			return
		}
		code := http.StatusOK
		if len(res.Errors) > 0 {
			code = http.StatusUnprocessableEntity
		}
		api.WriteJSON(w, code, res)
	})))
	mux.HandleFunc("/v1/{service}/", d.serviceRoute)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// serviceRoute hands /v1/<service>/... to the current instance of that
// service. Permissions are the service's to declare: each wraps its
// mutating routes in api.RequireWriter, and a route left unwrapped (such
// as netcfg's dns query) is open to every client that may use the socket.
func (d *Daemon) serviceRoute(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	if _, ok := d.regs[name]; !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("no service %q", name))
		return
	}
	svc := d.tree.Service(name)
	if svc == nil {
		d.mu.Lock()
		enabled := config.Enabled(d.cfg.Sections[name])
		d.mu.Unlock()
		if !enabled {
			api.WriteError(w, http.StatusServiceUnavailable, fmt.Errorf("service %s is not enabled (set %s.enable: true in the config)", name, name))
			return
		}
		api.WriteError(w, http.StatusServiceUnavailable, fmt.Errorf("service %s is not running: %s", name, d.tree.NotReady()[name]))
		return
	}
	h, ok := svc.(service.LocalAPI)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("service %s has no API", name))
		return
	}
	h.LocalAPI().ServeHTTP(w, r)
}

// httpHandler serves the HTTP listener: health, status, metrics, and the
// metrics service's query API and dashboard.
func (d *Daemon) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rd := d.Ready()
		code := http.StatusOK
		if !rd.Ready {
			code = http.StatusServiceUnavailable
		}
		api.WriteJSON(w, code, rd)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, d.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.gatherer, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	public := func(w http.ResponseWriter, r *http.Request) {
		if svc := d.tree.Service("metrics"); svc != nil {
			if p, ok := svc.(service.PublicHTTP); ok {
				p.PublicHTTP().ServeHTTP(w, r)
				return
			}
		}
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("hostd: see /status, /readyz, /healthz and /metrics\n"))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			api.WriteError(w, http.StatusServiceUnavailable, fmt.Errorf("the metrics service is not running"))
			return
		}
		http.NotFound(w, r)
	}
	mux.HandleFunc("/", public)
	return mux
}
