package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/configs"
	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/testenv"
)

// TestRunExampleConfig runs the real service set on the shipped example
// config, as `make run` does, and checks that hostd becomes ready with the
// services the example enables and serves its health surface.
func TestRunExampleConfig(t *testing.T) {
	dir := testenv.TempDir(t)
	httpAddr := testenv.FreeAddr(t)
	cfgText := strings.Replace(string(configs.Example), "listen: 127.0.0.1:9273", "listen: "+httpAddr, 1)
	cfg := filepath.Join(dir, "hostd.yaml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STATE_DIRECTORY": filepath.Join(dir, "state"), "RUNTIME_DIRECTORY": dir}
	logf, _ := os.Create(filepath.Join(dir, "log"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigFile:    cfg,
			Registrations: registrations(),
			Version:       "test",
			Getenv:        func(k string) string { return env[k] },
			Stderr:        logf,
			Signals:       make(chan os.Signal),
		})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("daemon did not stop within 20s")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("daemon log:\n%s", b)
		}
	})
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		code, body, err := get("/readyz")
		if err != nil || code != 200 {
			return fmt.Errorf("readyz %d %s %v", code, body, err)
		}
		return nil
	})
	if code, _, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	code, body, _ := get("/metrics")
	for _, want := range []string{`hostd_service_state{service="metrics",state="ready"} 1`, "node_cpu_seconds_total", "node_memory_MemAvailable_bytes"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	var st api.Status
	if err := api.NewClient(filepath.Join(dir, "hostd.sock")).Get(context.Background(), api.RouteStatus, &st); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range st.Services {
		states[s.Name] = s.State
	}
	want := map[string]string{"netcfg": "ready", "metrics": "ready", "proxy": "disabled", "backup": "disabled", "containers": "disabled", "audio": "disabled"}
	for name, w := range want {
		if states[name] != w {
			t.Errorf("%s is %s, want %s", name, states[name], w)
		}
	}
	stop()
}
