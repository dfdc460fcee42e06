package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
)

func TestPruneAPIRejectsBadRequests(t *testing.T) {
	s, _ := newTestService(t, "unix://"+filepath.Join(testenv.TempDir(t), "none.sock"), DefaultConfig(), "", nil)
	hc := serveAPI(t, s)
	raw := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", hc.Socket)
	}}}
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"malformed", "POST", "/v1/containers/prune", `{"dry_run":`, 400, "decode prune request"},
		{"unknown field", "POST", "/v1/containers/prune", `{"dryrun":true}`, 400, `unknown field`},
		{"wrong type", "POST", "/v1/containers/prune", `{"dry_run":"yes"}`, 400, "decode prune request"},
		{"trailing data", "POST", "/v1/containers/prune", `{} {}`, 400, "trailing data"},
		{"too large", "POST", "/v1/containers/prune", `{"dry_run":true` + strings.Repeat(" ", 5000) + `}`, 413, "larger than 4 KiB"},
		{"wrong method", "GET", "/v1/containers/prune", ``, 405, ""},
		{"engine down", "POST", "/v1/containers/prune", `{"dry_run":true}`, 503, "not reachable"},
		{"status while down", "GET", "/v1/containers/status", ``, 200, `"reachable": false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, "http://hostd"+tt.path, bytes.NewReader([]byte(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.msg) {
				t.Fatalf("%s %s %q: %d %s; want %d containing %q", tt.method, tt.path, tt.body, resp.StatusCode, body, tt.code, tt.msg)
			}
			if tt.code >= 400 && tt.code != 405 {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Errorf("error reply is not {\"error\": ...}: %s", body)
				}
			}
		})
	}
}

func FuzzDecodePruneRequest(f *testing.F) {
	for _, s := range []string{`{}`, `{"dry_run":true}`, `{"dry_run":false}`, `{"dry_run":1}`, `[]`, `null`, `{"a":1}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req PruneRequest
		if err := decodeStrict(data, &req); err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var back PruneRequest
		if err := decodeStrict(b, &back); err != nil || back != req {
			t.Fatalf("round trip of %q: %v %+v", data, err, back)
		}
	})
}
