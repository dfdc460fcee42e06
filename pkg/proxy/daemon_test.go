package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestDaemonPortTaken runs hostd in-process with the proxy and another
// service. The proxy's SOCKS port is taken: the proxy fails with a clear
// error and backs off while the other service stays ready; once the port is
// free the proxy recovers on its own. The secrets are in a SOPS file made by
// the real sops tool, and the daemon's whole log and status output is
// searched for them.
func TestDaemonPortTaken(t *testing.T) {
	w := newWorld(t)
	dir := testenv.TempDir(t)
	key := testenv.NewAgeKey(t, dir, "keys.txt")
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	testenv.SOPSEncrypt(t, filepath.Join(dir, "secrets"), "v2ray", "yaml", fmt.Sprintf(
		"v2ray:\n  server_address: %s\n  server_port: %d\n  user_id: %q\n  public_key: %q\n  short_id: %q\n",
		w.xray.Host, w.xray.Port, w.xray.UserID, w.xray.PublicKey, w.xray.ShortID), nil, key.Recipient)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	socket := filepath.Join(dir, "hostd.sock")
	cfg := fmt.Sprintf(`hostd:
  state_dir: %s
  socket: %s
  http:
    listen: %s
  log_format: text
  log_level: debug
  restart_backoff: 50ms
  restart_backoff_max: 200ms
  shutdown_timeout: 5s
  stop_timeout: 2s
secrets:
  age_key_file: %s
alpha:
  enable: true
proxy:
  enable: true
  socks:
    listen: %s
  http:
    listen: %s
  server:
    address: sops:secrets/v2ray.yaml#v2ray/server_address
    port: sops:secrets/v2ray.yaml#v2ray/server_port
    user_id: sops:secrets/v2ray.yaml#v2ray/user_id
    public_key: sops:secrets/v2ray.yaml#v2ray/public_key
    short_id: sops:secrets/v2ray.yaml#v2ray/short_id
  server_name: %s
  health_url: http://%s/generate_204
  health_interval: 1h
`, filepath.Join(dir, "state"), socket, testenv.FreeAddr(t), key.File, taken.Addr(), testenv.FreeAddr(t), w.xray.ServerName, destHost)
	cfgFile := filepath.Join(dir, "hostd.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "hostd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigFile: cfgFile,
			Registrations: []daemon.Registration{
				daemontest.Registration("alpha"),
				daemon.Register(Name, DefaultConfig, New),
			},
			Version: "test",
			Getenv:  func(string) string { return "" },
			Stderr:  logFile,
			Signals: make(chan os.Signal),
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop")
		}
	})

	client := api.NewClient(socket)
	service := func(name string) (api.ServiceStatus, error) {
		var st api.Status
		if err := client.Get(context.Background(), "/v1/status", &st); err != nil {
			return api.ServiceStatus{}, err
		}
		for _, s := range st.Services {
			if s.Name == name {
				return s, nil
			}
		}
		return api.ServiceStatus{}, fmt.Errorf("no service %s", name)
	}
	wantErr := fmt.Sprintf("proxy.socks.listen %s: address in use", taken.Addr())
	testenv.WaitFor(t, 20*time.Second, func() error {
		p, err := service(Name)
		if err != nil {
			return err
		}
		if p.Restarts < 2 || !strings.Contains(p.LastError, wantErr) {
			return fmt.Errorf("proxy %s, %d restarts, last error %q; want restarts with %q", p.State, p.Restarts, p.LastError, wantErr)
		}
		a, err := service("alpha")
		if err != nil {
			return err
		}
		if a.State != "ready" {
			return fmt.Errorf("alpha is %s, want ready while the proxy backs off", a.State)
		}
		return nil
	})

	// Free the port: the next restart succeeds and the probe goes through.
	taken.Close()
	testenv.WaitFor(t, 20*time.Second, func() error {
		p, err := service(Name)
		if err != nil {
			return err
		}
		if p.State != "ready" {
			return fmt.Errorf("proxy %s (%s)", p.State, p.LastError)
		}
		return nil
	})
	var d Details
	if err := client.Get(context.Background(), "/v1/proxy/status", &d); err != nil {
		t.Fatal(err)
	}
	if d.State != StateUp || d.Server != w.xray.Addr() {
		t.Errorf("proxy status = %+v", d)
	}
	var res ProbeResult
	if err := client.Post(context.Background(), "/v1/proxy/test", nil, &res); err != nil || !res.OK || res.At.IsZero() {
		t.Errorf("POST /v1/proxy/test = %+v, %v", res, err)
	}

	// Everything hostd printed or served must be free of secrets.
	status, err := client.Raw(context.Background(), "GET", "/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(logFile.Name())
	for _, v := range w.secretValues() {
		if strings.Contains(string(status), v) || strings.Contains(string(logs), v) {
			t.Errorf("secret value %.4s... appears in status or logs", v)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("hostd log:\n%s", logs)
	}
}
