package service_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
)

// testRoutes is a table with a read and a write route on one path each,
// and both methods on a third.
func testRoutes() []service.Route {
	ok := func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, r.Method+" "+r.URL.Path) }
	return []service.Route{
		{Method: http.MethodGet, Path: "/v1/t/status", Access: service.Read, Handler: ok},
		{Method: http.MethodPost, Path: "/v1/t/act", Access: service.Write, Handler: ok},
		{Method: http.MethodGet, Path: "/v1/t/both", Access: service.Read, Handler: ok},
		{Method: http.MethodPost, Path: "/v1/t/both", Access: service.Write, Handler: ok},
	}
}

// TestNewMuxWithoutPeer serves the table without peer credentials (not on
// the unix socket): read routes answer, write routes are refused before
// their handler runs, and unknown paths and methods get JSON errors.
func TestNewMuxWithoutPeer(t *testing.T) {
	mux := service.NewMux(testRoutes())
	for _, tc := range []struct {
		method, path string
		code         int
		msg, allow   string
	}{
		{"GET", "/v1/t/status", 200, "", ""},
		{"HEAD", "/v1/t/status", 200, "", ""},
		{"POST", "/v1/t/act", 403, "only accepted on the unix socket", ""},
		{"GET", "/v1/t/both", 200, "", ""},
		{"POST", "/v1/t/both", 403, "only accepted on the unix socket", ""},
		{"POST", "/v1/t/status", 405, "POST /v1/t/status: method not allowed (allowed: GET, HEAD)", "GET, HEAD"},
		{"GET", "/v1/t/act", 405, "GET /v1/t/act: method not allowed (allowed: POST)", "POST"},
		{"DELETE", "/v1/t/both", 405, "allowed: GET, HEAD, POST", "GET, HEAD, POST"},
		{"GET", "/v1/t/nope", 404, "no route GET /v1/t/nope", ""},
		{"GET", "/v1/t/status/", 404, "no route GET /v1/t/status/", ""},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.code)
			continue
		}
		if got := rec.Header().Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.code == 200 {
			continue
		}
		var e api.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s %s: body %s, want a JSON error containing %q", tc.method, tc.path, rec.Body, tc.msg)
		}
	}
}

// TestNewMuxWriterOnSocket serves the table on a unix socket: the test's
// own uid is the daemon's, so it may call every route.
func TestNewMuxWriterOnSocket(t *testing.T) {
	sock := filepath.Join(testenv.TempDir(t), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: service.NewMux(testRoutes()), ConnContext: api.ConnContext}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c := api.NewClient(sock)
	for _, rt := range testRoutes() {
		var got string
		if _, err := c.Raw(context.Background(), rt.Method, rt.Path, struct{}{}); err != nil {
			t.Errorf("%s as uid %d: %v", rt.Pattern(), os.Getuid(), err)
		}
		if rt.Method == http.MethodGet {
			if err := c.Get(context.Background(), rt.Path, &got); err != nil || got != rt.Pattern() {
				t.Errorf("%s: %q, %v", rt.Pattern(), got, err)
			}
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[service.Access]string{service.Read: "read", service.Write: "write", 7: "Access(7)"} {
		if got := a.String(); got != want {
			t.Errorf("Access(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}
