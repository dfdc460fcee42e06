package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Alertmanager is a Debian prometheus-alertmanager on a loopback port,
// clustering off, with its own temporary storage. Its one route sends
// nothing anywhere: tests read what it received through its v2 API.
type Alertmanager struct {
	URL string // http://127.0.0.1:PORT
	Cmd *exec.Cmd

	mu  sync.Mutex
	log bytes.Buffer
}

// StartAlertmanager starts /usr/bin/prometheus-alertmanager and stops it
// when the test ends. A missing binary skips the test, or fails it with
// CI=true.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin := LookPath(t, "prometheus-alertmanager")
	dir := TempDir(t)
	cfg := "route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: blackhole\n"
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write alertmanager config: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreeAddr(t)
		am := &Alertmanager{URL: "http://" + addr}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin,
			"--config.file="+cfgPath,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--cluster.listen-address=", // no gossip port on all interfaces
		)
		cmd.Stdout = &promLogWriter{mu: &am.mu, w: &am.log}
		cmd.Stderr = cmd.Stdout
		if err := startTied(cmd); err != nil {
			cancel()
			t.Fatalf("start alertmanager: %v", err)
		}
		am.Cmd = cmd
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			cancel()
			<-exited
		}
		if err := waitPromHTTP(am.URL+"/-/ready", exited, 30*time.Second); err != nil {
			stop()
			lastErr = fmt.Errorf("%w; log:\n%s", err, am.Log())
			continue
		}
		t.Cleanup(stop)
		return am
	}
	t.Fatalf("start alertmanager: %v", lastErr)
	return nil
}

// Log is everything Alertmanager logged so far.
func (a *Alertmanager) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// AlertmanagerAlert is an alert as Alertmanager's v2 API lists it.
type AlertmanagerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"` // active, suppressed or unprocessed
	} `json:"status"`
}

// Alerts lists the alerts Alertmanager holds (GET /api/v2/alerts). A
// resolved alert (endsAt passed) is no longer listed.
func (a *Alertmanager) Alerts(ctx context.Context) ([]AlertmanagerAlert, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/api/v2/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list alertmanager alerts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list alertmanager alerts: %s", resp.Status)
	}
	var out []AlertmanagerAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode alertmanager alerts: %w", err)
	}
	return out, nil
}
