package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// promGet queries a real Prometheus and decodes its envelope.
func promGet(t *testing.T, base, path string, form url.Values) (int, apiResponse) {
	t.Helper()
	u := base + path
	if form != nil {
		u += "?" + form.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r apiResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET %s: decode %q: %v", u, b, err)
	}
	r.raw = b
	return resp.StatusCode, r
}

// normalize sorts vector/matrix results and arrays so answers that differ
// only in order compare equal.
func normalize(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	sortAny := func(xs []any) {
		sort.Slice(xs, func(i, j int) bool {
			a, _ := json.Marshal(xs[i])
			b, _ := json.Marshal(xs[j])
			return string(a) < string(b)
		})
	}
	switch d := v.(type) {
	case map[string]any:
		if res, ok := d["result"].([]any); ok && d["resultType"] != "scalar" && d["resultType"] != "string" {
			sortAny(res)
		}
	case []any:
		sortAny(d)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRemoteWriteMatchesPrometheus pushes the same scrapes into hostd's
// TSDB and, over Remote Write 1.0, into a real Prometheus, then asks both
// the same questions: answers, error types and status codes must agree.
func TestRemoteWriteMatchesPrometheus(t *testing.T) {
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{RemoteWriteReceiver: true})
	store := openTestStorage(t)
	w := NewRemoteWriter(RemoteWriteConfig{URL: prom.URL + "/api/v1/write", MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "Requests served."}, []string{"code"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_temperature_celsius", Help: "Temperature."}, []string{"device"})
	reg.MustRegister(c, g)
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	clock := servicetest.NewFakeClock(start)
	sc := &Scraper{Gatherer: reg, Storage: store.DB, Clock: clock, OnSamples: w.Enqueue}
	for i := 0; i < 40; i++ {
		c.WithLabelValues("200").Add(float64(10 + i%4))
		c.WithLabelValues("500").Add(1)
		g.WithLabelValues("sda").Set(float64(30 + i%3))
		if i < 20 {
			g.WithLabelValues("sdb").Set(40)
		} else {
			g.DeleteLabelValues("sdb") // disappears: stale marker on both sides
		}
		if _, err := sc.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Second)
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		if st := w.Status(); st.Queued > 0 || st.Sent == 0 {
			return fmt.Errorf("remote write status %+v", st)
		}
		return nil
	})
	if st := w.Status(); st.Dropped != 0 || st.LastError != "" {
		t.Fatalf("remote write status %+v", st)
	}
	h := NewAPI(store.DB, sc.Metadata, APIOptions{}, nil).Handler()

	// Evaluation times fall between scrapes: Prometheus 3's range
	// selectors (hostd's engine) exclude a sample exactly on the window's
	// left edge, the Debian Prometheus 2.42 includes it.
	at := func(d time.Duration) string { return fmt.Sprintf("%d", start.Add(d+7*time.Second).Unix()) }
	checks := []struct {
		path string
		form url.Values
	}{
		{"/api/v1/query", url.Values{"query": {"1+1"}, "time": {at(0)}}},
		{"/api/v1/query", url.Values{"query": {"rate(test_requests_total[1m])"}, "time": {at(5 * time.Minute)}}},
		{"/api/v1/query", url.Values{"query": {"sum by (code) (rate(test_requests_total[2m]))"}, "time": {at(7 * time.Minute)}}},
		{"/api/v1/query", url.Values{"query": {"test_temperature_celsius"}, "time": {at(4*time.Minute + 50*time.Second)}}},
		{"/api/v1/query", url.Values{"query": {"test_temperature_celsius"}, "time": {at(5*time.Minute + 10*time.Second)}}}, // sdb stale
		{"/api/v1/query_range", url.Values{"query": {"test_temperature_celsius"}, "start": {at(4 * time.Minute)}, "end": {at(6 * time.Minute)}, "step": {"15"}}},
		{"/api/v1/query_range", url.Values{"query": {"increase(test_requests_total[1m])"}, "start": {at(time.Minute)}, "end": {at(9 * time.Minute)}, "step": {"60"}}},
		{"/api/v1/labels", nil},
		{"/api/v1/label/__name__/values", nil},
		{"/api/v1/label/device/values", nil},
		{"/api/v1/series", url.Values{"match[]": {"test_temperature_celsius"}}},
		{"/api/v1/series", url.Values{"match[]": {`{code="500"}`, `{device="sdb"}`}}},
		// Errors: same type and status code.
		{"/api/v1/query", url.Values{"query": {"sum(rate(x[5m]"}}},
		{"/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}},
		{"/api/v1/query_range", url.Values{"query": {"1"}, "start": {at(time.Minute)}, "end": {at(0)}, "step": {"15"}}},
		{"/api/v1/query_range", url.Values{"query": {"1"}, "start": {at(0)}, "end": {at(time.Minute)}, "step": {"0"}}},
		{"/api/v1/query_range", url.Values{"query": {"1"}, "start": {at(0)}, "end": {at(24 * time.Hour)}, "step": {"1"}}},
		{"/api/v1/series", nil},
	}
	for _, ck := range checks {
		t.Run(ck.path+"?"+ck.form.Encode(), func(t *testing.T) {
			pc, pr := promGet(t, prom.URL, ck.path, ck.form)
			hc, hr := apiCall(t, h, "GET", ck.path, ck.form)
			if pc != hc || pr.Status != hr.Status || pr.ErrorType != hr.ErrorType {
				t.Fatalf("prometheus: %d %s\nhostd:      %d %s", pc, pr.raw, hc, hr.raw)
			}
			if pr.Status == "success" {
				if a, b := normalize(t, pr.Data), normalize(t, hr.Data); a != b {
					t.Fatalf("data differs\nprometheus: %s\nhostd:      %s", a, b)
				}
			}
		})
	}
	// buildinfo: same keys.
	_, pr := promGet(t, prom.URL, "/api/v1/status/buildinfo", nil)
	_, hr := apiCall(t, h, "GET", "/api/v1/status/buildinfo", nil)
	var pb, hb map[string]string
	_ = json.Unmarshal(pr.Data, &pb)
	_ = json.Unmarshal(hr.Data, &hb)
	for k := range pb {
		if _, ok := hb[k]; !ok {
			t.Errorf("buildinfo lacks %q that Prometheus has", k)
		}
	}
}

// TestRemoteWriteRetriesAndBoundsQueue puts a fault-injecting proxy in
// front of a real Prometheus: while it answers 503 the writer keeps at most
// queue_size samples and retries; once it passes requests through, the
// queued samples arrive; a 400 drops the batch instead of retrying it.
func TestRemoteWriteRetriesAndBoundsQueue(t *testing.T) {
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{RemoteWriteReceiver: true})
	target, _ := url.Parse(prom.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mode atomic.Value // "fail", "reject" or "pass"
	mode.Store("fail")
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch mode.Load() {
		case "fail":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "reject":
			http.Error(w, "bad samples", http.StatusBadRequest)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()

	w := NewRemoteWriter(RemoteWriteConfig{URL: srv.URL + "/api/v1/write", QueueSize: 50, BatchSize: 10,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var samples []Sample
	for i := 0; i < 80; i++ {
		samples = append(samples, Sample{Labels: labels.FromStrings("__name__", "rw_test", "job", "hostd"), T: start.Add(time.Duration(i) * time.Second).UnixMilli(), V: float64(i)})
	}
	w.Enqueue(samples)
	testenv.WaitFor(t, 10*time.Second, func() error {
		if st := w.Status(); st.Failed < 3 {
			return fmt.Errorf("failed pushes %d", st.Failed)
		}
		return nil
	})
	st := w.Status()
	if st.Dropped != 30 || st.Queued != 50 || st.Sent != 0 || !strings.Contains(st.LastError, "503") {
		t.Fatalf("while failing: %+v, want 30 dropped, 50 queued", st)
	}
	mode.Store("pass")
	testenv.WaitFor(t, 20*time.Second, func() error {
		if st := w.Status(); st.Queued != 0 {
			return fmt.Errorf("still queued: %+v", st)
		}
		return nil
	})
	if st := w.Status(); st.Sent != 50 || st.LastError != "" {
		t.Fatalf("after recovery: %+v", st)
	}
	_, r := promGet(t, prom.URL, "/api/v1/query", url.Values{"query": {"count_over_time(rw_test[5m])"}, "time": {fmt.Sprintf("%d", start.Add(79*time.Second).Unix())}})
	if !strings.Contains(string(r.Data), `"value":[`+fmt.Sprintf("%d", start.Add(79*time.Second).Unix())+`,"50"]`) {
		t.Fatalf("prometheus holds %s, want the 50 queued samples", r.Data)
	}

	mode.Store("reject")
	before := requests.Load()
	w.Enqueue([]Sample{{Labels: labels.FromStrings("__name__", "rw_test"), T: start.Add(2 * time.Minute).UnixMilli(), V: 1}})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if st := w.Status(); st.Queued != 0 || st.Dropped != 31 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if n := requests.Load() - before; n != 1 {
		t.Fatalf("rejected batch was sent %d times, want once", n)
	}
}

func TestEncodeWriteRequestGroupsSeries(t *testing.T) {
	a := labels.FromStrings("__name__", "a")
	b := labels.FromStrings("__name__", "b", "x", "1")
	body, err := EncodeWriteRequest([]Sample{{a, 2000, 2}, {b, 1000, 5}, {a, 1000, 1}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := decodeWriteRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Timeseries) != 2 || len(req.Timeseries[0].Samples) != 2 || req.Timeseries[0].Samples[0].Timestamp != 1000 {
		t.Fatalf("request = %+v", req)
	}
}

// TestRemoteWriteSecretsStayOut configures basic auth from a secret
// reference and a URL with a token in its query: the receiver gets the
// credentials, while status, errors and logs never show them.
func TestRemoteWriteSecretsStayOut(t *testing.T) {
	const password, token = "pw-7f3a9c", "tok-91be2d"
	var gotUser, gotPass atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		gotUser.Store(u)
		gotPass.Store(p)
		if _, err := decodeWriteRequestBody(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	cfg := fixtureConfig()
	cfg.RemoteWrite = []RemoteWriteConfig{{URL: srv.URL + "/api/v1/write?token=" + token, BasicAuthUser: "host-a",
		BasicAuthPassword: "env:HOSTD_TEST_RW_PASSWORD", MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}}
	t.Setenv("HOSTD_TEST_RW_PASSWORD", password)
	rs := startServiceWithSecrets(t, cfg)
	testenv.WaitFor(t, 10*time.Second, func() error {
		if d := rs.Status().Details.(StatusDetails); len(d.RemoteWrite) != 1 || d.RemoteWrite[0].Sent == 0 {
			return fmt.Errorf("nothing sent yet: %+v", d.RemoteWrite)
		}
		return nil
	})
	if gotUser.Load() != "host-a" || gotPass.Load() != password {
		t.Fatalf("receiver got basic auth %v/%v", gotUser.Load(), gotPass.Load())
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	out := gatherText(t, rs.reg)
	if !strings.Contains(out, `hostd_metrics_remote_write_samples_sent_total{remote="`+host+`"} `) ||
		!strings.Contains(out, `hostd_metrics_remote_write_queue_samples{remote="`+host+`"}`) {
		t.Fatalf("remote write metrics missing:\n%s", out)
	}
	srv.Close() // now every push fails
	if _, err := rs.Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if d := rs.Status().Details.(StatusDetails); d.RemoteWrite[0].LastError == "" {
			return fmt.Errorf("no push failure yet")
		}
		return nil
	})
	st, _ := json.Marshal(rs.Status())
	for _, secret := range []string{password, token} {
		if strings.Contains(string(st), secret) {
			t.Errorf("status shows a secret: %s", st)
		}
		if strings.Contains(rs.logs.String(), secret) {
			t.Errorf("logs show a secret:\n%s", rs.logs.String())
		}
	}
	if !strings.Contains(string(st), "connection refused") {
		t.Errorf("status does not say why pushes fail: %s", st)
	}
}

// TestRemoteWriteStuckReceiver: a receiver that accepts the connection
// and never answers costs one timeout per push: the push fails with an
// error naming the timeout option, is retried with backoff, and Run
// stops when asked.
func TestRemoteWriteStuckReceiver(t *testing.T) {
	peer := testenv.NewStuckPeer(t, "tcp", "127.0.0.1:0")
	w := NewRemoteWriter(RemoteWriteConfig{URL: "http://" + peer.Addr + "/api/v1/write", Timeout: 200 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	w.Enqueue([]Sample{{Labels: labels.FromStrings("__name__", "rw_test"), T: time.Now().UnixMilli(), V: 1}})
	testenv.WaitFor(t, 30*time.Second, func() error {
		if st := w.Status(); st.Failed < 2 {
			return fmt.Errorf("failed pushes %d", st.Failed)
		}
		return nil
	})
	st := w.Status()
	if !strings.Contains(st.LastError, "no answer within 200ms (metrics.remote_write[].timeout)") || st.Queued != 1 || st.Sent != 0 {
		t.Errorf("status %+v, want the sample queued and a timeout error naming the option", st)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestRemoteWriteBackoffOnClock drives the retry waits with a fake clock:
// they double from min_backoff up to max_backoff, start over after a
// push succeeds, and LastSent is the clock's time.
func TestRemoteWriteBackoffOnClock(t *testing.T) {
	var fails atomic.Int32 // pushes still to answer with 503
	fails.Store(4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(-1) >= 0 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	clock := servicetest.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	w := NewRemoteWriter(RemoteWriteConfig{URL: srv.URL, MinBackoff: time.Second, MaxBackoff: 4 * time.Second}, nil, nil)
	w.Clock = clock
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// waitFor waits until the writer sleeps, checks for how long, and
	// lets that time pass.
	waitFor := func(want time.Duration) {
		t.Helper()
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		at, _ := clock.NextTimer()
		if got := at.Sub(clock.Now()); got != want {
			t.Fatalf("retry after %s, want %s (status %+v)", got, want, w.Status())
		}
		clock.Advance(want)
	}
	sample := func(v float64) []Sample {
		return []Sample{{Labels: labels.FromStrings("__name__", "rw_backoff"), T: int64(v) * 1000, V: v}}
	}
	w.Enqueue(sample(1))
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		waitFor(d)
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		if st := w.Status(); st.Sent != 1 {
			return fmt.Errorf("sample not sent: %+v", st)
		}
		return nil
	})
	if st := w.Status(); st.Failed != 4 || !st.LastSent.Equal(clock.Now()) || st.LastError != "" {
		t.Fatalf("after recovery: %+v, want 4 failed pushes and last_sent %s", st, clock.Now())
	}
	// A success starts the waits over at min_backoff.
	fails.Store(1)
	w.Enqueue(sample(2))
	waitFor(time.Second)
}
