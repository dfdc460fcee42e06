package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestProxyThroughServer sends real curl requests through both inbounds
// and checks, with the server's own counters, which ones went through it.
func TestProxyThroughServer(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	r := start(t, w, cfg)
	d := r.waitState(t, StateUp)
	if d.Server != w.xray.Addr() {
		t.Errorf("status server = %q, want %q", d.Server, w.xray.Addr())
	}
	if last, _ := r.health.Last(); !last.Ready {
		t.Errorf("health: %v; want ready", last)
	}
	privateURL := w.dest.URL + "/private"

	tests := []struct {
		name    string
		args    []string
		want    string
		viaXray bool
	}{
		{"socks5 hostname", []string{"--socks5-hostname", cfg.SOCKS.Listen, "http://" + destHost + "/socks"}, "hello from dest /socks", true},
		{"http proxy", []string{"-x", "http://" + cfg.HTTP.Listen, "http://" + destHost + "/http"}, "hello from dest /http", true},
		{"https connect tunnel", []string{"-p", "-x", "http://" + cfg.HTTP.Listen, "http://" + destHost + "/connect"}, "hello from dest /connect", true},
		{"socks5 private address goes direct", []string{"--socks5-hostname", cfg.SOCKS.Listen, privateURL}, "hello from dest /private", false},
		{"http private address goes direct", []string{"-x", "http://" + cfg.HTTP.Listen, privateURL}, "hello from dest /private", false},
		{"localhost goes direct", []string{"--socks5-hostname", cfg.SOCKS.Listen, strings.Replace(privateURL, "127.0.0.1", "localhost", 1)}, "hello from dest /private", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up0, down0 := w.xray.Traffic()
			hits0 := w.hits.Load()
			got, err := curl(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("body = %q, want %q", got, tt.want)
			}
			if w.hits.Load() != hits0+1 {
				t.Errorf("destination saw %d requests, want 1", w.hits.Load()-hits0)
			}
			// xray adds a connection's bytes to the counters when it ends.
			var up, down int64
			if tt.viaXray {
				err := testenv.Poll(context.Background(), 5*time.Second, func() error {
					up, down = w.xray.Traffic()
					if up <= up0 || down <= down0 {
						return fmt.Errorf("server traffic %d/%d, was %d/%d", up, down, up0, down0)
					}
					return nil
				})
				if err != nil {
					t.Errorf("request did not go through the server: %v", err)
				}
			} else if up, down = w.xray.Traffic(); up != up0 || down != down0 {
				t.Errorf("server traffic changed %d/%d -> %d/%d: request did not go direct", up0, down0, up, down)
			}
		})
	}

	// Status and metrics count the bytes per inbound and outbound.
	var st Details
	if err := testenv.Poll(context.Background(), 5*time.Second, func() error {
		st = r.svc.Details()
		for _, k := range []string{"inbound/socks", "inbound/http", "outbound/proxy", "outbound/direct"} {
			if st.Traffic[k].Down == 0 {
				return fmt.Errorf("traffic %s = %+v, want bytes", k, st.Traffic[k])
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if s := r.svc.Status().Summary; !strings.Contains(s, "up server "+w.xray.Addr()+" latency") {
		t.Errorf("summary = %q", s)
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(mfs, "hostd_proxy_up", nil); v != 1 {
		t.Errorf("hostd_proxy_up = %v, want 1", v)
	}
	if v := metric(mfs, "hostd_proxy_traffic_bytes_total", map[string]string{"kind": "inbound", "tag": "socks", "direction": "downlink"}); v <= 0 {
		t.Errorf("socks downlink bytes = %v, want > 0", v)
	}
	if v := metric(mfs, "hostd_proxy_probe_latency_seconds", nil); v <= 0 || v > 5 {
		t.Errorf("probe latency = %vs", v)
	}
	assertNoSecrets(t, w, r)
}

// TestProxyUDPAssociate sends a UDP datagram through the SOCKS5 inbound
// (UDP ASSOCIATE) to a loopback echo server, which goes direct.
func TestProxyUDPAssociate(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	r := start(t, w, cfg)
	r.waitState(t, StateUp)

	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()

	c, err := net.DialTimeout("tcp", cfg.SOCKS.Listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Greeting (version 5, one method: no auth), then UDP ASSOCIATE 0.0.0.0:0.
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	if _, err := io.ReadFull(c, buf[:2]); err != nil || buf[1] != 0 {
		t.Fatalf("greeting reply %v, %v", buf[:2], err)
	}
	if _, err := c.Write([]byte{5, 3, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:10]); err != nil || buf[1] != 0 || buf[3] != 1 {
		t.Fatalf("UDP ASSOCIATE reply %v, %v: want success with an IPv4 relay", buf[:10], err)
	}
	relay := &net.UDPAddr{IP: net.IP(bytes.Clone(buf[4:8])), Port: int(buf[8])<<8 | int(buf[9])}

	u, err := net.DialUDP("udp", nil, relay)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dest := echo.LocalAddr().(*net.UDPAddr)
	pkt := append([]byte{0, 0, 0, 1}, dest.IP.To4()...)
	pkt = append(pkt, byte(dest.Port>>8), byte(dest.Port), 'p', 'i', 'n', 'g')
	u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Write(pkt); err != nil {
		t.Fatal(err)
	}
	n, err := u.Read(buf)
	if err != nil {
		t.Fatalf("no UDP reply through the proxy: %v", err)
	}
	if n < 10 || string(buf[10:n]) != "echo ping" {
		t.Fatalf("UDP reply %q, want header + %q", buf[:n], "echo ping")
	}
}

// TestProxyDegraded starts the proxy against a server that does not accept
// it: requests fail and the status says why.
func TestProxyDegraded(t *testing.T) {
	w := newWorld(t)
	closed := fmt.Sprint(testenv.RefusedPort(t))
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"wrong public key", func(c *Config) {
			c.Server.PublicKey = Value{Ref: w.writeSecret(t, "other_key", "E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM")}
		}, "REALITY authentication failed"},
		{"wrong short id", func(c *Config) {
			c.Server.ShortID = Value{Ref: w.writeSecret(t, "other_sid", "0123456789abcdef")}
		}, "REALITY authentication failed"},
		{"connection refused", func(c *Config) { c.Server.Port = Value{Literal: closed} }, "connection refused"},
	}
	// Configs are made first, as they write files. The cases run one after
	// another: xray-core keeps its system dialer's DNS client and outbound
	// manager in package variables that core.New overwrites, so instances
	// created side by side race on them (hostd itself runs one at a time).
	cfgs := make([]Config, len(tests))
	for i, tt := range tests {
		cfgs[i] = w.config(t)
		tt.mutate(&cfgs[i])
	}
	for i, tt := range tests {
		cfg := cfgs[i]
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, w, cfg)
			d := r.waitState(t, StateDown)
			if !strings.Contains(d.LastError, tt.want) {
				t.Errorf("last error = %q, want it to say %q", d.LastError, tt.want)
			}
			if last, _ := r.health.Last(); !servicetest.IsDegraded(tt.want)(last) {
				t.Errorf("health: %v; want degraded saying %q", last, tt.want)
			}
			up0, _ := w.xray.Traffic()
			hits0 := w.hits.Load()
			if out, err := curl(t, "--socks5-hostname", cfg.SOCKS.Listen, "http://"+destHost+"/x"); err == nil {
				t.Errorf("request through a server that rejects us succeeded: %q", out)
			}
			if w.hits.Load() != hits0 {
				t.Errorf("destination was reached")
			}
			_ = up0
			if !strings.Contains(r.svc.Status().Summary, "down") {
				t.Errorf("summary %q does not say down", r.svc.Status().Summary)
			}
			assertNoSecrets(t, w, r)
		})
	}
}

// TestProxyPortTaken: a listen address in use fails Serve with an error
// naming it, so the supervisor backs off.
func TestProxyPortTaken(t *testing.T) {
	w := newWorld(t)
	for _, inbound := range []string{"socks", "http"} {
		t.Run(inbound, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cfg := w.config(t)
			if inbound == "socks" {
				cfg.SOCKS.Listen = l.Addr().String()
			} else {
				cfg.HTTP.Listen = l.Addr().String()
			}
			r := start(t, w, cfg)
			select {
			case err := <-r.done:
				want := fmt.Sprintf("proxy.%s.listen %s: address in use", inbound, l.Addr())
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Serve = %v, want %q", err, want)
				}
				r.done <- err // for the cleanup
			case <-time.After(20 * time.Second):
				t.Fatal("Serve did not fail")
			}
			if d := r.svc.Details(); d.State != StateFailed {
				t.Errorf("state = %s, want %s", d.State, StateFailed)
			}
		})
	}
}

// TestProxyLink configures the server as a vless:// link in a secret file.
func TestProxyLink(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	cfg.Server = ServerConfig{Link: Value{Ref: w.writeSecret(t, "link", w.xray.Link())}}
	cfg.ServerName = ""
	r := start(t, w, cfg)
	r.waitState(t, StateUp)
	got, err := curl(t, "-x", "http://"+cfg.HTTP.Listen, "http://"+destHost+"/link")
	if err != nil || got != "hello from dest /link" {
		t.Fatalf("curl = %q, %v", got, err)
	}
	assertNoSecrets(t, w, r)
}

// TestProxyAuth binds to all addresses with allow_lan and auth: requests
// need the password.
func TestProxyAuth(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	cfg.AllowLAN = true
	cfg.SOCKS.Listen = strings.Replace(cfg.SOCKS.Listen, "127.0.0.1", "0.0.0.0", 1)
	cfg.HTTP.Listen = strings.Replace(cfg.HTTP.Listen, "127.0.0.1", "0.0.0.0", 1)
	cfg.Auth = AuthConfig{Username: "alice", Password: w.writeSecret(t, "password", "s3cret-pw")}
	r := start(t, w, cfg)
	r.waitState(t, StateUp)
	socks := strings.Replace(cfg.SOCKS.Listen, "0.0.0.0", "127.0.0.1", 1)
	httpAddr := strings.Replace(cfg.HTTP.Listen, "0.0.0.0", "127.0.0.1", 1)
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"socks without password", []string{"--socks5-hostname", socks}, false},
		{"socks wrong password", []string{"--socks5-hostname", "alice:nope@" + socks}, false},
		{"socks with password", []string{"--socks5-hostname", "alice:s3cret-pw@" + socks}, true},
		{"http without password", []string{"-x", "http://" + httpAddr}, false},
		{"http with password", []string{"-x", "http://alice:s3cret-pw@" + httpAddr}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := curl(t, append(tt.args, "http://"+destHost+"/auth")...)
			if (err == nil) != tt.ok {
				t.Errorf("curl error = %v, want success %v", err, tt.ok)
			}
		})
	}
	if strings.Contains(r.logs.String(), "s3cret-pw") {
		t.Errorf("password in logs")
	}
}

// assertNoSecrets greps everything the proxy showed for secret values.
func assertNoSecrets(t *testing.T, w *world, r *running) {
	t.Helper()
	st, _ := json.Marshal(r.svc.Status())
	mfs, _ := r.reg.Gather()
	metrics, _ := json.Marshal(mfs)
	out := strings.Join([]string{r.logs.String(), string(st), string(metrics), r.svc.Status().Summary}, "\n")
	for _, v := range w.secretValues() {
		if strings.Contains(out, v) {
			t.Errorf("secret value %.4s... appears in logs, status or metrics", v)
		}
	}
}

func metric(mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// TestProxySOPSSecrets reads the server from a SOPS file made by the real
// sops tool, as the seed's secrets/v2ray.yaml, and checks that no secret
// reaches logs, status, metrics or errors.
func TestProxySOPSSecrets(t *testing.T) {
	w := newWorld(t)
	secretsDir := filepath.Join(w.dir, "secrets")
	if err := os.Mkdir(secretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	key := testenv.NewAgeKey(t, w.dir, "keys.txt")
	wrong := testenv.NewAgeKey(t, w.dir, "wrong.txt")
	testenv.SOPSEncrypt(t, secretsDir, "v2ray", "yaml", fmt.Sprintf(
		"v2ray:\n  server_address: %s\n  server_port: %d\n  user_id: %q\n  public_key: %q\n  short_id: %q\n",
		w.xray.Host, w.xray.Port, w.xray.UserID, w.xray.PublicKey, w.xray.ShortID), nil, key.Recipient)
	cfg := w.config(t)
	ref := func(k string) Value { return Value{Ref: secrets.Ref("sops:secrets/v2ray.yaml#v2ray/" + k)} }
	cfg.Server = ServerConfig{Address: ref("server_address"), Port: ref("server_port"),
		UserID: ref("user_id"), PublicKey: ref("public_key"), ShortID: ref("short_id")}

	t.Run("right key", func(t *testing.T) {
		w.resolver = &secrets.Resolver{BaseDir: w.dir, Getenv: func(k string) string {
			return map[string]string{"SOPS_AGE_KEY_FILE": key.File}[k]
		}}
		r := start(t, w, cfg)
		r.waitState(t, StateUp)
		got, err := curl(t, "--socks5-hostname", cfg.SOCKS.Listen, "http://"+destHost+"/sops")
		if err != nil || got != "hello from dest /sops" {
			t.Fatalf("curl = %q, %v", got, err)
		}
		assertNoSecrets(t, w, r)
	})
	t.Run("wrong key", func(t *testing.T) {
		w.resolver = &secrets.Resolver{BaseDir: w.dir, AgeKeyFile: wrong.File, Getenv: func(string) string { return "" }}
		r := start(t, w, cfg)
		var err error
		select {
		case err = <-r.done:
			r.done <- err
		case <-time.After(20 * time.Second):
			t.Fatal("Serve did not fail")
		}
		for _, want := range []string{"server.address", "secrets/v2ray.yaml", "none of the age identities in " + wrong.File, key.Recipient} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Serve error = %v, want it to mention %q", err, want)
			}
		}
		d := r.svc.Details()
		if d.State != StateFailed || d.LastError == "" {
			t.Errorf("status = %s %q, want failed with the reason", d.State, d.LastError)
		}
		for _, v := range w.secretValues() {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error reveals a secret")
			}
		}
		assertNoSecrets(t, w, r)
	})
}

// TestLocalAPI exercises the routes the CLI uses.
func TestLocalAPI(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	r := start(t, w, cfg)
	r.waitState(t, StateUp)
	h := r.svc.LocalAPI()
	tests := []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/proxy/status", 200, `"state":"up"`},
		{"POST", "/v1/proxy/test", 200, `"ok":true`},
		{"GET", "/v1/proxy/test", 405, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		// POST needs the peer-credential check to pass: without a unix
		// socket peer it is refused, which is the check working.
		if tt.method == "POST" && rec.Code == http.StatusForbidden {
			continue
		}
		if body := strings.ReplaceAll(rec.Body.String(), " ", ""); rec.Code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s = %d %s, want %d with %q", tt.method, tt.path, rec.Code, rec.Body, tt.code, tt.want)
		}
	}
	res, err := r.svc.Probe(context.Background())
	if err != nil || !res.OK || res.Status != http.StatusNoContent {
		t.Errorf("Probe = %+v, %v", res, err)
	}
	stopped, _ := New(testEnv(), cfg)
	if _, err := stopped.Probe(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Probe of a stopped proxy = %v, want ErrNotRunning", err)
	}
}

// TestProxySecretChange rewrites a secret while the proxy runs: the proxy
// replaces its xray instance with the new value by itself.
func TestProxySecretChange(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t)
	cfg.Server.ShortID = Value{Ref: w.writeSecret(t, "rotating_sid", "0123456789abcdef")} // not the server's
	cfg.HealthInterval = time.Second
	r := start(t, w, cfg)
	d := r.waitState(t, StateDown)
	if !strings.Contains(d.LastError, "REALITY authentication failed") {
		t.Fatalf("last error = %q", d.LastError)
	}
	w.writeSecret(t, "rotating_sid", w.xray.ShortID)
	r.waitState(t, StateUp)
	if got, err := curl(t, "--socks5-hostname", cfg.SOCKS.Listen, "http://"+destHost+"/rotated"); err != nil || got != "hello from dest /rotated" {
		t.Errorf("curl after the change = %q, %v", got, err)
	}
	if !strings.Contains(r.logs.String(), "proxy secrets changed: restarting xray") {
		t.Errorf("no restart logged")
	}
	select {
	case err := <-r.done:
		t.Errorf("Serve returned %v: the change must not surface to the supervisor", err)
		r.done <- err
	default:
	}
	assertNoSecrets(t, w, r)
}
