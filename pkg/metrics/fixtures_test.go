package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/prompb"
)

// fixtureNow is the clock of collectors reading testdata.
var fixtureNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixtureHostOptions points the collectors at the /proc and /sys copies
// under testdata.
func fixtureHostOptions() HostOptions {
	return HostOptions{
		ProcPath: "testdata/proc",
		SysPath:  "testdata/sys",
		UdevPath: "testdata/udev",
		Now:      func() time.Time { return fixtureNow },
	}
}

// newFixtureCollector builds the named collectors over testdata.
func newFixtureCollector(t testing.TB, logger *slog.Logger, names ...string) *NodeCollector {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := newHost(fixtureHostOptions(), logger)
	if err != nil {
		t.Fatalf("open fixture host: %v", err)
	}
	n, err := newNodeCollector(h, names, logger)
	if err != nil {
		t.Fatalf("create collectors %v: %v", names, err)
	}
	return n
}

// exposition gathers c into the Prometheus text format.
func exposition(t testing.TB, cs ...prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register collector: %v", err)
		}
	}
	return gatherText(t, reg)
}

// gatherText gathers g into the Prometheus text format.
func gatherText(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encode %s: %v", mf.GetName(), err)
		}
	}
	return buf.String()
}

// openTestStorage opens a TSDB in a temporary directory, closed at the end.
func openTestStorage(t testing.TB) *Storage {
	t.Helper()
	s, err := OpenStorage(StorageOptions{Dir: t.TempDir(), Retention: 15 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// apiGet calls the API handler and decodes Prometheus' envelope.
func apiCall(t testing.TB, h http.Handler, method, target string, form url.Values) (int, apiResponse) {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		if form != nil {
			target += "?" + form.Encode()
		}
		req = httptest.NewRequest(method, target, nil)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r apiResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s %s: decode %q: %v", method, target, rec.Body.String(), err)
	}
	r.raw = rec.Body.Bytes()
	return rec.Code, r
}

// apiResponse is Prometheus' envelope as clients decode it.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	raw       []byte
}

// decodeWriteRequest undoes EncodeWriteRequest.
func decodeWriteRequest(body []byte) (*prompb.WriteRequest, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, err
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeWriteRequestBody reads a remote write request as a receiver does.
func decodeWriteRequestBody(r *http.Request) (*prompb.WriteRequest, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
		return nil, fmt.Errorf("headers %v are not Remote Write 1.0", r.Header)
	}
	return decodeWriteRequest(body)
}

// kernelNameFinding reports whether a promtool lint finding is only about
// the kernel's CamelCase field names that node_exporter keeps in
// node_memory_* and node_netstat_* (dashboards depend on them).
// The other finding allowed is node_exporter's node_entropy_*_bits, whose
// unit promtool would have in bytes.
func kernelNameFinding(line string) bool {
	if strings.HasPrefix(line, "node_entropy_") && strings.HasSuffix(line, `use base unit "bytes" instead of "bits"`) {
		return true
	}
	return (strings.HasPrefix(line, "node_memory_") || strings.HasPrefix(line, "node_netstat_")) &&
		strings.HasSuffix(line, "should be written in 'snake_case' not 'camelCase'")
}
