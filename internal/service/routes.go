package service

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/hostd/hostd/internal/api"
)

// Access is who may call a route of the local API.
type Access int

const (
	// Read routes are open to every client that may open the socket: root,
	// the daemon's user and the members of hostd.socket_group.
	Read Access = iota
	// Write routes change hostd or the host: root and the daemon's user
	// only (api.CanWrite); anyone else is answered 403.
	Write
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Route is one route of the local API, as its owner declares it.
type Route struct {
	// Method is the HTTP method: GET or POST. A GET route answers HEAD
	// too.
	Method string
	// Path is the route's path, a constant of internal/api/routes.go.
	Path string
	// Access says who may call the route; it is checked before Handler
	// runs, so a handler does no permission check of its own.
	Access Access
	// Handler answers the request.
	Handler http.HandlerFunc
	// Doc says in one line what the route does, what it takes and what it
	// answers.
	Doc string
}

// Pattern is the route's ServeMux pattern: "GET /v1/status".
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

// ServeHTTP checks the caller's permission and then calls the handler: a
// Write route answers 403 to a peer that api.CanWrite refuses, without
// reading the request.
func (rt Route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.Access != Read {
		if err := api.CanWrite(r.Context()); err != nil {
			api.WriteError(w, http.StatusForbidden, err)
			return
		}
	}
	rt.Handler(w, r)
}

// LocalAPI is implemented by services with routes on the daemon's unix
// socket, under /v1/<name>/. The daemon serves the table with NewMux, so
// each route's permission is checked once, there.
type LocalAPI interface {
	// Routes is the service's route table.
	Routes() []Route
}

// NewMux returns a ServeMux serving routes, each behind its permission
// check (Route.ServeHTTP). A path that no route has is answered 404 and a
// method that no route of the path has 405 with an Allow header, both as
// JSON errors. The caller may add patterns of its own. Two routes with the
// same method and path panic, as ServeMux.Handle does.
func NewMux(routes []Route) *http.ServeMux {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	for _, rt := range routes {
		mux.Handle(rt.Pattern(), rt)
		allow[rt.Path] = append(allow[rt.Path], rt.Method)
	}
	for path, methods := range allow {
		if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
			methods = append(methods, http.MethodHead)
		}
		slices.Sort(methods)
		list := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			api.WriteError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, list))
		})
	}
	mux.HandleFunc("/", NotFound)
	return mux
}

// NotFound answers 404 "no route METHOD PATH" as a JSON error.
func NotFound(w http.ResponseWriter, r *http.Request) {
	api.WriteError(w, http.StatusNotFound, fmt.Errorf("no route %s %s", r.Method, r.URL.Path))
}
