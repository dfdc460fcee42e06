package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/internal/testenv/xraytest"
	"github.com/hostd/hostd/pkg/proxy"
)

// proxyDestHost is the name the test xray server maps to the destination
// server; the proxy does not treat it as private, so it goes through the
// server.
const proxyDestHost = "dest.hostd.test"

// proxyWorld is a destination HTTP server and an in-process VLESS+REALITY
// server that maps proxyDestHost to it.
type proxyWorld struct {
	xray *xraytest.Xray
	dir  string // secret files
}

func newProxyWorld(t *testing.T) *proxyWorld {
	t.Helper()
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/generate_204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, "hello from dest %s", r.URL.Path)
	}))
	t.Cleanup(dest.Close)
	return &proxyWorld{
		xray: xraytest.StartXray(t, xraytest.XrayOptions{Hosts: map[string]string{proxyDestHost: dest.Listener.Addr().String()}}),
		dir:  testenv.TempDir(t),
	}
}

// secret writes value to a file and returns its absolute path, a secret
// reference.
func (w *proxyWorld) secret(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// section is the proxy config section for the server, on free ports, with
// user_id, public_key and short_id as secret references. publicKey ""
// means the server's own key.
func (w *proxyWorld) section(t *testing.T, publicKey string) (section, socks, httpAddr string) {
	t.Helper()
	if publicKey == "" {
		publicKey = w.xray.PublicKey
	}
	socks, httpAddr = testenv.FreeAddr(t), testenv.FreeAddr(t)
	section = fmt.Sprintf(`proxy:
  enable: true
  socks:
    listen: %s
  http:
    listen: %s
  server:
    address: %s
    port: %d
    user_id: file:%s
    public_key: file:%s
    short_id: file:%s
  server_name: %s
  health_url: http://%s/generate_204
  health_interval: 1h
  health_timeout: 5s
`, socks, httpAddr, w.xray.Host, w.xray.Port,
		w.secret(t, "user_id", w.xray.UserID), w.secret(t, "public_key", publicKey), w.secret(t, "short_id", w.xray.ShortID),
		w.xray.ServerName, proxyDestHost)
	return section, socks, httpAddr
}

// secretValues must never appear in any output.
func (w *proxyWorld) secretValues() map[string]string {
	return map[string]string{"user id": w.xray.UserID, "short id": w.xray.ShortID, "public key": w.xray.PublicKey, "private key": w.xray.PrivateKey}
}

// startProxyDaemon runs a daemon with the proxy service and waits until
// the proxy's first probe is done and it is in one of states.
func startProxyDaemon(t *testing.T, section string, states ...string) (socket string) {
	t.Helper()
	socket = startDaemonWith(t, []daemon.Registration{daemon.Register("proxy", proxy.DefaultConfig, proxy.New)}, section)
	testenv.WaitFor(t, 20*time.Second, func() error {
		out, _ := runCLI(t, "--socket", socket, "--json", "proxy", "status")
		var d proxy.Details
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			return fmt.Errorf("proxy status --json: %v: %s", err, out)
		}
		for _, s := range states {
			if d.State == s {
				return nil
			}
		}
		return fmt.Errorf("state %s (%s), want %v", d.State, d.LastError, states)
	})
	return socket
}

// proxyStep is one CLI run: its arguments, the exit status and substrings
// of the output it must have.
type proxyStep struct {
	args []string
	code int
	out  []string
}

// runProxySteps runs the steps against socket and returns every output.
func runProxySteps(t *testing.T, socket string, steps []proxyStep) []string {
	t.Helper()
	var outs []string
	for _, st := range steps {
		out, code := runCLI(t, append([]string{"--socket", socket}, st.args...)...)
		outs = append(outs, out)
		name := strings.Join(st.args, " ")
		if code != st.code {
			t.Errorf("hostd %s: exit %d, want %d:\n%s", name, code, st.code, out)
		}
		for _, want := range st.out {
			if !strings.Contains(out, want) {
				t.Errorf("hostd %s: output lacks %q:\n%s", name, want, out)
			}
		}
	}
	return outs
}

// assertNoProxySecrets fails when an output holds a secret value.
func assertNoProxySecrets(t *testing.T, w *proxyWorld, outs []string) {
	t.Helper()
	for _, out := range outs {
		for what, v := range w.secretValues() {
			if strings.Contains(out, v) {
				t.Errorf("output leaks the %s:\n%s", what, out)
			}
		}
	}
}

// TestProxyCLI drives `hostd proxy status|test` against a daemon whose
// proxy goes through a real in-process VLESS+REALITY server, and checks
// that no output of any verb holds the server's secrets.
func TestProxyCLI(t *testing.T) {
	w := newProxyWorld(t)
	section, _, httpAddr := w.section(t, "")
	socket := startProxyDaemon(t, section, proxy.StateUp)
	server := w.xray.Addr()

	// Traffic through the HTTP inbound, so status has some to show.
	pu, _ := url.Parse("http://" + httpAddr)
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://" + proxyDestHost + "/through")
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from dest /through" {
		t.Fatalf("through the proxy: %s %q", resp.Status, body)
	}

	outs := runProxySteps(t, socket, []proxyStep{
		{[]string{"proxy", "status"}, 0, []string{"state", "up", "server", server, "socks", "http", httpAddr,
			"last probe", "ok, latency", "probes", "1 ok, 0 failed", "HANDLER", "inbound/http"}},
		{[]string{"proxy", "test"}, 0, []string{"ok: http://" + proxyDestHost + "/generate_204 answered 204 in"}},
		{[]string{"proxy", "status"}, 0, []string{"2 ok, 0 failed"}},
		{[]string{"status"}, 0, []string{"proxy", "ready", "up server " + server + " latency"}},
		{[]string{"status", "--json"}, 0, []string{`"proxy"`}},
		{[]string{"config", "show"}, 0, []string{"proxy:", "server_name: " + w.xray.ServerName}},
		{[]string{"proxy", "status", "extra"}, 2, []string{"unknown command"}},
	})

	// --json prints exactly the wire types.
	out, code := runCLI(t, "--socket", socket, "--json", "proxy", "status")
	outs = append(outs, out)
	var d proxy.Details
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 {
		t.Fatalf("proxy status --json: exit %d, %v:\n%s", code, err, out)
	}
	if d.State != proxy.StateUp || d.Server != server || d.HTTP != httpAddr || d.LastProbe == nil || !d.LastProbe.OK ||
		d.LastProbe.LatencyMS <= 0 || d.ProbesOK != 2 || d.Traffic["inbound/http"].Down == 0 {
		t.Errorf("proxy status --json = %+v", d)
	}
	out, code = runCLI(t, "--socket", socket, "--json", "proxy", "test")
	outs = append(outs, out)
	var r proxy.ProbeResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || !r.OK || r.Status != http.StatusNoContent || r.LatencyMS <= 0 || r.At.IsZero() {
		t.Errorf("proxy test --json: exit %d, %v: %+v\n%s", code, err, r, out)
	}
	assertNoProxySecrets(t, w, outs)
}

// TestProxyCLIWrongKey: a server that rejects the configured public key
// makes `proxy test` exit 1 with the reason, and status show the proxy
// down.
func TestProxyCLIWrongKey(t *testing.T) {
	w := newProxyWorld(t)
	const otherKey = "E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM"
	section, _, _ := w.section(t, otherKey)
	socket := startProxyDaemon(t, section, proxy.StateDown)
	server := w.xray.Addr()

	outs := runProxySteps(t, socket, []proxyStep{
		{[]string{"proxy", "status"}, 0, []string{"down", server, "failed: ", "REALITY authentication failed", "0 ok, 1 failed"}},
		{[]string{"proxy", "test"}, 1, []string{"proxy test: ", "REALITY authentication failed"}},
		{[]string{"status"}, 1, []string{"proxy", "degraded", "server " + server + ": REALITY authentication failed"}},
	})
	out, code := runCLI(t, "--socket", socket, "--json", "proxy", "test")
	outs = append(outs, out)
	if code != 1 {
		t.Errorf("proxy test --json: exit %d, want 1:\n%s", code, out)
	}
	// The JSON document comes first, then the error.
	var r proxy.ProbeResult
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&r); err != nil || r.OK || !strings.Contains(r.Error, "REALITY authentication failed") {
		t.Errorf("proxy test --json: %v: %+v\n%s", err, r, out)
	}
	for _, o := range outs {
		if strings.Contains(o, otherKey) {
			t.Errorf("output leaks the configured public key:\n%s", o)
		}
	}
	assertNoProxySecrets(t, w, outs)
}

func TestProxyCLIWithoutDaemon(t *testing.T) {
	socket := filepath.Join(testenv.TempDir(t), "none.sock")
	for _, args := range [][]string{{"proxy", "status"}, {"proxy", "test"}, {"--json", "proxy", "status"}} {
		out, code := runCLI(t, append([]string{"--socket", socket}, args...)...)
		if code != 3 || !strings.Contains(out, "hostd is not running") {
			t.Errorf("%v: exit %d, %q; want 3 and not running", args, code, out)
		}
	}
}

// TestProxyConfigCheckSecrets: `hostd config check` refuses a LAN proxy
// whose password file is empty (curl -x http://u:@HOST got through), and a
// secret reference to a FIFO or /dev/zero returns at once with an error
// naming the option and the reference instead of hanging or reading
// without end.
func TestProxyConfigCheckSecrets(t *testing.T) {
	w := newProxyWorld(t)
	empty := w.secret(t, "empty", "")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(w.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	section, _, _ := w.section(t, "")
	lan := strings.ReplaceAll(section, "listen: 127.0.0.1:", "listen: 0.0.0.0:") + "  allow_lan: true\n  auth:\n    username: u\n"
	// server.link from a file: its content is checked as a literal
	// link is, and never shown.
	const garbage = "garbage not a link"
	withLink := func(link string) string {
		return regexpReplace(section, "(?s)  server:\n.*short_id: file:[^\n]*\n", "  server:\n    link: file:"+w.secret(t, "link", link)+"\n")
	}
	linkFile := filepath.Join(w.dir, "link")
	notUUID := w.secret(t, "not-uuid", "not-a-uuid")
	tests := []struct {
		name, section string
		want          []string
	}{
		{"empty password", lan + "    password: file:" + empty + "\n", []string{"proxy.auth.password", "file:" + empty, "secret is empty"}},
		{"fifo user id", regexpReplace(section, "user_id: file:[^\n]*", "user_id: file:"+fifo), []string{"proxy.server.user_id", "file:" + fifo, "not a regular file"}},
		{"dev zero link", regexpReplace(section, "user_id: file:[^\n]*", "user_id: file:/dev/zero"), []string{"proxy.server.user_id", "file:/dev/zero", "not a regular file"}},
		{"garbage link in a file", withLink(garbage), []string{"proxy.server.link: secret file:" + linkFile + ": link scheme is not vless://"}},
		{"user id in a file not a UUID", regexpReplace(section, "user_id: file:[^\n]*", "user_id: file:"+notUUID), []string{"proxy.server.user_id: secret file:" + notUUID + ": user id is not a UUID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(w.dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(tt.section), 0o600); err != nil {
				t.Fatal(err)
			}
			type result struct {
				out  string
				code int
			}
			done := make(chan result, 1)
			go func() {
				out, code := runCLI(t, "config", "check", file)
				done <- result{out, code}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(time.Minute): // a guard against a hang, not a measurement
				t.Fatal("config check did not return")
			}
			if res.code != 1 {
				t.Errorf("config check: exit %d, want 1:\n%s", res.code, res.out)
			}
			for _, want := range tt.want {
				if !strings.Contains(res.out, want) {
					t.Errorf("config check output lacks %q:\n%s", want, res.out)
				}
			}
			assertNoProxySecrets(t, w, []string{res.out})
			if strings.Contains(res.out, garbage) || strings.Contains(res.out, "not-a-uuid") {
				t.Errorf("config check shows a secret's value:\n%s", res.out)
			}
		})
	}
	// A real link in the file passes.
	good := withLink(fmt.Sprintf("vless://%s@%s:%d?security=reality&type=tcp&pbk=%s&sid=%s&sni=%s",
		w.xray.UserID, w.xray.Host, w.xray.Port, w.xray.PublicKey, w.xray.ShortID, w.xray.ServerName))
	if err := os.WriteFile(filepath.Join(w.dir, "good-link.yaml"), []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "config", "check", filepath.Join(w.dir, "good-link.yaml")); code != 0 {
		t.Errorf("config check of a link in a file: exit %d:\n%s", code, out)
	}
	// The same section with a password is fine.
	pw := w.secret(t, "pw", "s3cret-pw")
	file := filepath.Join(w.dir, "good.yaml")
	if err := os.WriteFile(file, []byte(lan+"    password: file:"+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, "config", "check", file); code != 0 {
		t.Errorf("config check of a LAN proxy with a password: exit %d:\n%s", code, out)
	}
}

func regexpReplace(s, expr, repl string) string {
	return regexp.MustCompile(expr).ReplaceAllLiteralString(s, repl)
}
