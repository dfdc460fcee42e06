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
	secretsFile := testenv.SOPSEncrypt(t, filepath.Join(dir, "secrets"), "v2ray", "yaml", fmt.Sprintf(
		"v2ray:\n  server_address: %s\n  server_port: %d\n  user_id: %q\n  public_key: %q\n  short_id: %q\n",
		w.xray.Host, w.xray.Port, w.xray.UserID, w.xray.PublicKey, w.xray.ShortID), nil, key.Recipient)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	td := daemontest.Start(t, daemontest.Options{
		Registrations: []daemon.Registration{
			daemontest.Registration("alpha"),
			daemon.Register(Name, DefaultConfig, New),
		},
		Config: func(d *daemontest.Daemon) string {
			return d.HostdSection("log_format: text", "log_level: debug", "restart_backoff_max: 200ms",
				"shutdown_timeout: 5s", "stop_timeout: 2s") + fmt.Sprintf(`secrets:
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
    address: sops:%[4]s#v2ray/server_address
    port: sops:%[4]s#v2ray/server_port
    user_id: sops:%[4]s#v2ray/user_id
    public_key: sops:%[4]s#v2ray/public_key
    short_id: sops:%[4]s#v2ray/short_id
  server_name: %[5]s
  health_url: http://%[6]s/generate_204
  health_interval: 1h
`, key.File, taken.Addr(), testenv.FreeAddr(t), secretsFile, w.xray.ServerName, destHost)
		},
		Getenv:      func(string) string { return "" },
		StopTimeout: 15 * time.Second,
	})
	client := td.Client()
	service := func(name string) (api.ServiceStatus, error) { return td.ServiceStatus(context.Background(), name) }
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
	if err := client.Get(context.Background(), api.RouteProxyStatus, &d); err != nil {
		t.Fatal(err)
	}
	if d.State != StateUp || d.Server != w.xray.Addr() {
		t.Errorf("proxy status = %+v", d)
	}
	var res ProbeResult
	if err := client.Post(context.Background(), api.RouteProxyTest, nil, &res); err != nil || !res.OK || res.At.IsZero() {
		t.Errorf("POST %s = %+v, %v", api.RouteProxyTest, res, err)
	}

	// Everything hostd printed or served must be free of secrets.
	status, err := client.Raw(context.Background(), "GET", api.RouteStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := td.Log()
	for _, v := range w.secretValues() {
		if strings.Contains(string(status), v) || strings.Contains(logs, v) {
			t.Errorf("secret value %.4s... appears in status or logs", v)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("hostd log:\n%s", logs)
	}
}
