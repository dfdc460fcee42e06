package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
)

// The test binary doubles as a hostd daemon with two controllable
// services, so signals, exit codes and sd_notify are tested on a real
// process.
func TestMain(m *testing.M) {
	if os.Getenv("HOSTD_TEST_DAEMON") == "1" {
		check, _ := time.ParseDuration(os.Getenv("HOSTD_TEST_SOCKET_CHECK"))
		err := daemon.Run(context.Background(), daemon.Options{
			ConfigFile:          os.Getenv("HOSTD_TEST_CONFIG"),
			Registrations:       []daemon.Registration{daemontest.Registration("alpha"), daemontest.Registration("beta")},
			Version:             "test",
			SocketCheckInterval: check,
		})
		if ce, ok := err.(*daemon.ConfigError); ok {
			fmt.Fprintln(os.Stderr, ce.Err)
			os.Exit(2)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a daemon process under test.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	dir    string
	cfg    string
	socket string
	http   string
	mu     sync.Mutex
	log    bytes.Buffer
	done   chan struct{}
	err    error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// configText returns a config for a test daemon; extra is appended.
func baseConfig(dir, socket, httpAddr string) string {
	return fmt.Sprintf(`hostd:
  state_dir: %s
  socket: %s
  http:
    listen: %s
  log_format: text
  log_level: debug
  restart_backoff: 50ms
  restart_backoff_max: 200ms
  shutdown_timeout: 2s
  stop_timeout: 500ms
`, filepath.Join(dir, "state"), socket, httpAddr)
}

func startDaemon(t *testing.T, services string, env ...string) *proc {
	t.Helper()
	dir := testenv.TempDir(t)
	p := &proc{t: t, dir: dir, socket: filepath.Join(dir, "hostd.sock"), http: testenv.FreeAddr(t), done: make(chan struct{})}
	p.cfg = filepath.Join(dir, "hostd.yaml")
	if err := os.WriteFile(p.cfg, []byte(baseConfig(dir, p.socket, p.http)+services), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start(env...)
	testenv.WaitFor(t, 10*time.Second, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("daemon exited: %v\n%s", p.err, p.logs())
		default:
		}
		_, err := http.Get("http://" + p.http + "/healthz")
		return err
	})
	return p
}

func (p *proc) start(env ...string) {
	p.t.Helper()
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), "HOSTD_TEST_DAEMON=1", "HOSTD_TEST_CONFIG="+p.cfg)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	p.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if p.t.Failed() {
			p.t.Logf("daemon log:\n%s", p.logs())
		}
	})
}

func (p *proc) status(t *testing.T) api.Status {
	t.Helper()
	var st api.Status
	if err := api.NewClient(p.socket).Get(context.Background(), "/v1/status", &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

func (p *proc) service(t *testing.T, name string) api.ServiceStatus {
	t.Helper()
	for _, s := range p.status(t).Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %s in status", name)
	return api.ServiceStatus{}
}

func (p *proc) readyz(t *testing.T) (int, api.Ready) {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	var r api.Ready
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode readyz: %v", err)
	}
	return resp.StatusCode, r
}

func (p *proc) waitExit(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("daemon did not exit within %s\n%s", within, p.logs())
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func TestFaultyServiceIsRestartedAndOthersStayReady(t *testing.T) {
	for _, mode := range []string{"panic", "error"} {
		t.Run(mode, func(t *testing.T) {
			dir := testenv.TempDir(t)
			fault := filepath.Join(dir, "fault")
			if err := os.WriteFile(fault, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			p := startDaemon(t, fmt.Sprintf("alpha: {}\nbeta:\n  mode: %s\n  fault_file: %s\n", mode, fault))
			testenv.WaitFor(t, 10*time.Second, func() error {
				if s := p.service(t, "beta"); s.Restarts < 3 {
					return fmt.Errorf("beta restarts %d, state %s", s.Restarts, s.State)
				}
				return nil
			})
			beta := p.service(t, "beta")
			if !strings.Contains(beta.LastError, "test fault") {
				t.Errorf("beta last_error = %q, want the fault", beta.LastError)
			}
			if beta.State != "backoff" && beta.State != "starting" {
				t.Errorf("beta state = %s, want backoff or starting", beta.State)
			}
			if a := p.service(t, "alpha"); a.State != "ready" || a.Restarts != 0 {
				t.Errorf("alpha = %s with %d restarts, want ready and untouched", a.State, a.Restarts)
			}
			code, r := p.readyz(t)
			if code != http.StatusServiceUnavailable || !strings.Contains(r.NotReady["beta"], "test fault") {
				t.Errorf("readyz = %d %+v, want 503 naming beta's fault", code, r)
			}
			if _, ok := r.NotReady["alpha"]; ok {
				t.Errorf("readyz names alpha: %+v", r)
			}
			// The fault goes away: beta recovers.
			if err := os.Remove(fault); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, func() error {
				if code, r := p.readyz(t); code != http.StatusOK {
					return fmt.Errorf("readyz %d %+v", code, r)
				}
				return nil
			})
			if s := p.service(t, "beta"); s.State != "ready" {
				t.Errorf("beta = %s after recovery", s.State)
			}
		})
	}
}

func TestDegradedServiceShowsReason(t *testing.T) {
	dir := testenv.TempDir(t)
	fault := filepath.Join(dir, "fault")
	if err := os.WriteFile(fault, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, fmt.Sprintf("alpha: {}\nbeta:\n  mode: degraded\n  fault_file: %s\n", fault))
	testenv.WaitFor(t, 5*time.Second, func() error {
		if s := p.service(t, "beta"); s.State != "degraded" {
			return fmt.Errorf("beta %s", s.State)
		}
		return nil
	})
	if s := p.service(t, "beta"); s.LastError != "test fault: beta degraded" || s.Restarts != 0 {
		t.Errorf("beta = %+v", s)
	}
	os.Remove(fault)
	testenv.WaitFor(t, 5*time.Second, func() error {
		if s := p.service(t, "beta"); s.State != "ready" {
			return fmt.Errorf("beta %s", s.State)
		}
		return nil
	})
}

func TestDependencyOrderAndWaitingFor(t *testing.T) {
	p := startDaemon(t, "alpha:\n  delay: 1s\nbeta:\n  needs: [alpha]\n")
	beta := p.service(t, "beta")
	if beta.State != "starting" || len(beta.WaitingFor) != 1 || beta.WaitingFor[0] != "alpha" {
		t.Errorf("beta while alpha starts = %+v, want starting, waiting for alpha", beta)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if s := p.service(t, "beta"); s.State != "ready" {
			return fmt.Errorf("beta %s", s.State)
		}
		return nil
	})
	a, b := p.service(t, "alpha"), p.service(t, "beta")
	if b.Since.Before(a.Since) {
		t.Errorf("beta ready at %s before alpha at %s", b.Since, a.Since)
	}
}

// notifySocket listens like systemd's NOTIFY_SOCKET and collects messages.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{path: filepath.Join(testenv.TempDir(t), "notify.sock")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				n.msgs = append(n.msgs, line)
				n.at = append(n.at, time.Now())
			}
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifySocket) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		if strings.HasPrefix(m, prefix) {
			c++
		}
	}
	return c
}

func (n *notifySocket) wait(t *testing.T, prefix string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, func() error {
		if n.count(prefix) == 0 {
			n.mu.Lock()
			defer n.mu.Unlock()
			return fmt.Errorf("no %q among %q", prefix, n.msgs)
		}
		return nil
	})
}

func TestSystemdNotify(t *testing.T) {
	n := listenNotify(t)
	const watchdog = 400 * time.Millisecond
	p := startDaemon(t, "alpha: {}\nbeta: {}\n", "NOTIFY_SOCKET="+n.path, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds()))
	n.wait(t, "READY=1")
	n.wait(t, "STATUS=2 ready")
	// Watchdog pings come at half of WatchdogSec: over a window of 10
	// intervals, expect about 20 pings. The bounds are loose because the
	// machine may be busy; what is checked is the rate's order.
	before := n.count("WATCHDOG=1")
	window := 10 * watchdog
	time.Sleep(window) // measuring a rate needs a fixed window
	got := n.count("WATCHDOG=1") - before
	if got < 10 || got > 30 {
		t.Errorf("%d watchdog pings in %s, want about %d", got, window, int(window/(watchdog/2)))
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.waitExit(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if n.count("STOPPING=1") != 1 {
		t.Errorf("no STOPPING=1 after SIGTERM")
	}
}

func TestSIGTERMWithHangingServiceExitsWithinDeadline(t *testing.T) {
	p := startDaemon(t, "alpha:\n  mode: hang\nbeta: {}\n")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if code, r := p.readyz(t); code != 200 {
			return fmt.Errorf("not ready: %+v", r)
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	code, took := p.waitExit(t, 10*time.Second)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	// shutdown_timeout is 2s in the test config.
	if took > 5*time.Second {
		t.Errorf("exit took %s with a 2s deadline", took)
	}
	if !strings.Contains(p.logs(), "alpha") {
		t.Errorf("log does not name the hanging service:\n%s", p.logs())
	}
}

func TestSIGHUPReload(t *testing.T) {
	p := startDaemon(t, "alpha: {}\nbeta: {}\n")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if code, r := p.readyz(t); code != 200 {
			return fmt.Errorf("not ready: %+v", r)
		}
		return nil
	})
	before := p.status(t)
	good, err := os.ReadFile(p.cfg)
	if err != nil {
		t.Fatal(err)
	}

	// A broken config is rejected and the old one keeps running.
	broken := strings.Replace(string(good), "beta: {}", "beta:\n  mode: sideways\n  colour: red", 1)
	os.WriteFile(p.cfg, []byte(broken), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	// Each error is a log line of its own: wait for both.
	testenv.WaitFor(t, 5*time.Second, func() error {
		if n := strings.Count(p.logs(), "config rejected"); n < 2 {
			return fmt.Errorf("%d rejection lines logged, want 2", n)
		}
		return nil
	})
	logs := p.logs()
	for _, want := range []string{"beta.mode: must be ok, panic, error, hang, degraded or burst", `beta.colour: unknown key \"colour\"`, "hostd.yaml:14:9: beta.mode", "hostd.yaml:15:3: beta.colour"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	after := p.status(t)
	if !after.ConfigLoadedAt.Equal(before.ConfigLoadedAt) {
		t.Errorf("config reloaded despite errors")
	}
	for i, s := range after.Services {
		if s.State != "ready" || !s.Since.Equal(before.Services[i].Since) {
			t.Errorf("service %s touched by a rejected reload: %+v", s.Name, s)
		}
	}

	// A good change restarts only the changed section's service.
	changed := strings.Replace(string(good), "beta: {}", "beta:\n  delay: 10ms", 1)
	os.WriteFile(p.cfg, []byte(changed), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	testenv.WaitFor(t, 5*time.Second, func() error {
		st := p.status(t)
		if st.ConfigLoadedAt.Equal(before.ConfigLoadedAt) {
			return fmt.Errorf("not reloaded")
		}
		if b := st.Services[1]; b.State != "ready" || !b.Since.After(before.Services[1].Since) {
			return fmt.Errorf("beta not restarted: %+v", b)
		}
		return nil
	})
	if a := p.status(t).Services[0]; !a.Since.Equal(before.Services[0].Since) {
		t.Errorf("alpha restarted by a change to beta's section")
	}
}

func TestBadConfigExitsTwoWithoutStarting(t *testing.T) {
	dir := testenv.TempDir(t)
	socket := filepath.Join(dir, "hostd.sock")
	httpAddr := testenv.FreeAddr(t)
	cases := []struct {
		name, config string
		want         []string
	}{
		{"unknown key", baseConfig(dir, socket, httpAddr) + "alpha:\n  moed: ok\n", []string{":13:3: alpha.moed: unknown key \"moed\" (did you mean \"mode\"?)"}},
		{"wrong type", baseConfig(dir, socket, httpAddr) + "alpha:\n  delay: [1]\n", []string{":13:10: alpha.delay: expected a duration"}},
		{"port clash", baseConfig(dir, socket, httpAddr) + "alpha:\n  listen: " + httpAddr + "\n", []string{"alpha.listen: port", "also used by hostd.http.listen"}},
		{"gc_percent too low", baseConfig(dir, socket, httpAddr) + "  gc_percent: 5\n", []string{"hostd.gc_percent: must be at least 10, not 5"}},
		{"code_trim_interval negative", baseConfig(dir, socket, httpAddr) + "  code_trim_interval: -1s\n", []string{`:12:23: hostd.code_trim_interval: invalid duration "-1s"`}},
		{"not yaml", "hostd: [\n", []string{"not valid YAML"}},
		{"empty", "", []string{":1:1: config file is empty"}},
		{"missing", "", []string{"config file does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if tc.name != "missing" {
				os.WriteFile(cfg, []byte(tc.config), 0o600)
			}
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "HOSTD_TEST_DAEMON=1", "HOSTD_TEST_CONFIG="+cfg)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit = %v, want 2; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if !strings.HasPrefix(string(out), cfg) {
				t.Errorf("error does not start with the file name:\n%s", out)
			}
			if _, err := os.Stat(socket); err == nil {
				t.Errorf("socket created despite a bad config")
			}
		})
	}
}

func TestSocketAndHTTPExposure(t *testing.T) {
	p := startDaemon(t, "alpha: {}\nbeta:\n  token: hunter2-very-secret\n")
	fi, err := os.Stat(p.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660 socket", fi.Mode())
	}
	if fi.Mode().Perm()&0o002 != 0 {
		t.Errorf("socket is world-writable")
	}
	// Defaults bind HTTP to loopback.
	if host, _, _ := net.SplitHostPort(p.http); host != "127.0.0.1" {
		t.Errorf("http on %s", host)
	}
	// /metrics has hostd's own series.
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`hostd_build_info{goversion=`, `hostd_service_state{service="alpha",state="ready"} 1`, "hostd_service_restarts_total", "go_goroutines", `hostd_test_runs_total{name="beta"} 1`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The secret-looking value stays out of config show, status and logs.
	cfgShow, err := api.NewClient(p.socket).Raw(context.Background(), "GET", "/v1/config", nil)
	if err != nil {
		t.Fatal(err)
	}
	statusJSON, _ := api.NewClient(p.socket).Raw(context.Background(), "GET", "/v1/status", nil)
	for what, b := range map[string][]byte{"config show": cfgShow, "status": statusJSON, "logs": []byte(p.logs())} {
		if bytes.Contains(b, []byte("hunter2")) {
			t.Errorf("%s leaks the secret:\n%s", what, b)
		}
	}
	if !bytes.Contains(cfgShow, []byte("token: <redacted>")) {
		t.Errorf("config show does not redact:\n%s", cfgShow)
	}
}

// goGCPercent reads the garbage collector target the daemon reports on
// /metrics (go_gc_gogc_percent, from the Go runtime itself).
func (p *proc) goGCPercent(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "go_gc_gogc_percent "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no go_gc_gogc_percent:\n%s", body)
	return ""
}

// TestGCPercent checks that hostd.gc_percent sets the daemon's garbage
// collector target, at start and on reload, and that a GOGC in the
// environment wins over it.
func TestGCPercent(t *testing.T) {
	cases := []struct {
		name, setting, env string
		want, reloaded     string
	}{
		{"default", "", "GOGC=", "100", "30"},
		{"configured", "  gc_percent: 40\n", "GOGC=", "40", "30"},
		{"GOGC wins", "  gc_percent: 40\n", "GOGC=75", "75", "75"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startDaemon(t, tc.setting+"alpha: {}\n", tc.env)
			if got := p.goGCPercent(t); got != tc.want {
				t.Errorf("go_gc_gogc_percent = %s, want %s", got, tc.want)
			}
			b, err := os.ReadFile(p.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg := strings.Replace(string(b), tc.setting+"alpha: {}\n", "  gc_percent: 30\nalpha: {}\n", 1)
			if err := os.WriteFile(p.cfg, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var res api.ConfigReload
			if err := api.NewClient(p.socket).Post(context.Background(), "/v1/config/reload", nil, &res); err != nil {
				t.Fatalf("reload: %v", err)
			}
			if len(res.Errors) > 0 {
				t.Fatalf("reload rejected: %v", res.Errors)
			}
			if got := p.goGCPercent(t); got != tc.reloaded {
				t.Errorf("after reload go_gc_gogc_percent = %s, want %s", got, tc.reloaded)
			}
		})
	}
}

// TestCodeTrim checks that the daemon releases its executable's unused
// pages once started and once ready by default, before and after a burst
// of work (a backup job), and never when hostd.code_trim_interval is 0.
func TestCodeTrim(t *testing.T) {
	cases := []struct {
		name, setting, services string
		want                    []string
	}{
		{"default", "", "alpha: {}\n", []string{`msg="released executable pages" when=start`, `msg="released executable pages" when=ready`}},
		{"off", "  code_trim_interval: 0s\n", "alpha: {mode: burst}\n", nil},
		{"every 50ms", "  code_trim_interval: 50ms\n", "alpha: {}\n", []string{`msg="released executable pages" when=ready`, `msg="released executable pages" when=interval`}},
		{"a burst of work", "", "alpha: {mode: burst}\n", []string{`msg="released executable pages" when="before work"`, `msg="released executable pages" when="after work"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startDaemon(t, tc.setting+tc.services)
			testenv.WaitFor(t, 10*time.Second, func() error {
				logs := p.logs()
				if !strings.Contains(logs, "hostd ready") {
					return fmt.Errorf("not ready yet")
				}
				for _, w := range tc.want {
					if !strings.Contains(logs, w) {
						return fmt.Errorf("log lacks %q yet", w)
					}
				}
				return nil
			})
			logs := p.logs()
			for _, w := range tc.want {
				if !strings.Contains(logs, w) {
					t.Errorf("log lacks %q", w)
				}
			}
			if tc.want == nil && strings.Contains(logs, "released executable pages") {
				t.Errorf("pages released with code_trim_interval 0:\n%s", logs)
			}
		})
	}
}

// TestMetricsNotCompressed checks that /metrics answers uncompressed even
// to a scraper that accepts gzip (each compressed scrape allocated a gzip
// writer of about 1 MiB), and that it carries the memory governor's
// counters.
func TestMetricsNotCompressed(t *testing.T) {
	p := startDaemon(t, "alpha: {}\n")
	req, err := http.NewRequest(http.MethodGet, "http://"+p.http+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("/metrics answered with Content-Encoding %q, want none", ce)
	}
	for _, want := range []string{`hostd_memory_governor_releases_total{reason="free"}`, `hostd_memory_governor_releases_total{reason="idle"}`, "hostd_memory_governor_released_bytes_total"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
