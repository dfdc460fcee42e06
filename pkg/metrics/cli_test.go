package metrics

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestWriteQueryTable(t *testing.T) {
	h, _ := newTestAPI(t, APIOptions{})
	tests := []struct {
		name    string
		path    string
		form    url.Values
		want    []string
		wantErr string
	}{
		{"scalar", "/api/v1/query", url.Values{"query": {"1+1"}, "time": {ts(0)}}, []string{"VALUE", "2 "}, ""},
		{"vector", "/api/v1/query", url.Values{"query": {"test_temperature_celsius"}, "time": {ts(time.Minute)}},
			[]string{`test_temperature_celsius{device="sda"}  31`, `test_temperature_celsius{device="sdb"}  40`}, ""},
		{"matrix", "/api/v1/query_range", url.Values{"query": {`sum(test_temperature_celsius)`}, "start": {ts(0)}, "end": {ts(15 * time.Second)}, "step": {"15"}},
			[]string{"{}      70", "{}      71"}, ""},
		{"empty", "/api/v1/query", url.Values{"query": {"nothing_here"}}, []string{"(no series)"}, ""},
		{"error", "/api/v1/query", url.Values{"query": {"sum("}}, nil, "query failed (bad_data)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := apiCall(t, h, "GET", tt.path, tt.form)
			var out bytes.Buffer
			err := WriteQueryTable(&out, r.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("table lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestLocalAPIQuery(t *testing.T) {
	rs := startService(t, t.TempDir(), fixtureConfig())
	rec := httptest.NewRecorder()
	rs.LocalAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics/query?query=node_load5", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"0.69"`) {
		t.Fatalf("local API query: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	rs.LocalAPI().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/metrics/query?query=sum(", nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"error":"invalid parameter`) {
		t.Fatalf("local API bad query: %d %s", rec.Code, rec.Body.String())
	}
}

func TestWriteAlertsTableEmptyAndError(t *testing.T) {
	var b strings.Builder
	if err := WriteAlertsTable(&b, []byte(`{"status":"success","data":{"alerts":[]}}`)); err != nil || b.String() != "no alerts pending or firing\n" {
		t.Fatalf("empty: %q %v", b.String(), err)
	}
	if err := WriteAlertsTable(&b, []byte(`{"status":"error","errorType":"internal","error":"x"}`)); err == nil || !strings.Contains(err.Error(), "internal") {
		t.Fatalf("error answer: %v", err)
	}
}
