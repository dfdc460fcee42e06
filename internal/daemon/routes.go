package daemon

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/service"
)

// socketHandler serves the local API: the daemon's own route table and,
// under /v1/<service>/, each running service's. Every route is served
// through service.NewMux, which checks the route's declared Access before
// its handler runs: the one permission check of the local API.
func (d *Daemon) socketHandler() http.Handler {
	mux := service.NewMux(d.routes())
	svcs := &serviceMuxes{byName: map[string]serviceMux{}}
	mux.HandleFunc(api.RouteServicePrefix, func(w http.ResponseWriter, r *http.Request) {
		d.serviceRoute(svcs, w, r)
	})
	// Without this, ServeMux would redirect /v1/x to the service prefix
	// /v1/x/ instead of answering 404.
	mux.HandleFunc(strings.TrimSuffix(api.RouteServicePrefix, "/"), service.NotFound)
	return mux
}

// routes is the daemon's own route table.
func (d *Daemon) routes() []service.Route {
	return []service.Route{
		{Method: http.MethodGet, Path: api.RouteStatus, Access: service.Read, Handler: d.handleStatus,
			Doc: "the daemon's and every service's status (Status)"},
		{Method: http.MethodGet, Path: api.RouteVersion, Access: service.Read, Handler: d.handleVersion,
			Doc: "hostd's version (Version)"},
		{Method: http.MethodGet, Path: api.RouteConfig, Access: service.Read, Handler: d.handleConfig,
			Doc: "the effective config, redacted, as YAML (?format=json: JSON)"},
		{Method: http.MethodPost, Path: api.RouteConfigReload, Access: service.Write, Handler: d.handleReload,
			Doc: "re-read the config file and apply it (ConfigReload)"},
		{Method: http.MethodGet, Path: api.RouteRoutes, Access: service.Read, Handler: d.handleRoutes,
			Doc: "this table: the daemon's routes and every running service's ([]RouteInfo)"},
	}
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, d.Status())
}

func (d *Daemon) handleVersion(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, api.Version{Version: d.opts.Version, GoVersion: runtime.Version()})
}

func (d *Daemon) handleConfig(w http.ResponseWriter, r *http.Request) {
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
}

func (d *Daemon) handleReload(w http.ResponseWriter, r *http.Request) {
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
}

// handleRoutes lists the daemon's routes, then each running service's,
// services by name.
func (d *Daemon) handleRoutes(w http.ResponseWriter, r *http.Request) {
	out := routeInfos("", d.routes())
	for _, name := range d.order() {
		if h, ok := d.tree.Service(name).(service.LocalAPI); ok {
			out = append(out, routeInfos(name, h.Routes())...)
		}
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func routeInfos(svc string, routes []service.Route) []api.RouteInfo {
	out := make([]api.RouteInfo, len(routes))
	for i, rt := range routes {
		out[i] = api.RouteInfo{Method: rt.Method, Path: rt.Path, Access: rt.Access.String(), Service: svc, Doc: rt.Doc}
	}
	return out
}

// order returns the registered services' names, sorted.
func (d *Daemon) order() []string {
	names := make([]string, 0, len(d.regs))
	for name := range d.regs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// serviceMuxes holds the mux of each service's current instance, built
// from its table when the instance first answers a request.
type serviceMuxes struct {
	mu     sync.Mutex
	byName map[string]serviceMux
}

type serviceMux struct {
	svc service.Service
	mux http.Handler
}

// get returns the mux of svc's table, building it when svc is a new
// instance (the service was restarted or reconfigured).
func (m *serviceMuxes) get(name string, svc service.Service, table service.LocalAPI) http.Handler {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.byName[name]; ok && cur.svc == svc {
		return cur.mux
	}
	mux := service.NewMux(table.Routes())
	m.byName[name] = serviceMux{svc: svc, mux: mux}
	return mux
}

// serviceRoute hands /v1/<service>/... to the current instance of that
// service, through the mux of its route table: 404 for a service that
// does not exist or has no routes, 503 for one that is not running.
func (d *Daemon) serviceRoute(muxes *serviceMuxes, w http.ResponseWriter, r *http.Request) {
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
	muxes.get(name, svc, h).ServeHTTP(w, r)
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
		// The body is about 70 KiB with every service on; compressing
		// it would allocate a gzip writer of about 1 MiB per scrape (its
		// pool is emptied at every collection) and cost more CPU than
		// the scrape itself.
		DisableCompression: true,
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
