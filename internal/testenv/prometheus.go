package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PrometheusOptions configure a test Prometheus.
type PrometheusOptions struct {
	// RemoteWriteReceiver enables --web.enable-remote-write-receiver, so
	// the server accepts pushes on /api/v1/write.
	RemoteWriteReceiver bool
	// ScrapeTargets are host:port addresses scraped as job "node" every
	// ScrapeInterval (default 1s).
	ScrapeTargets  []string
	ScrapeInterval time.Duration
	// Retention is --storage.tsdb.retention.time; default 1d.
	Retention string
	// RuleFiles are the config's rule_files, evaluated every
	// ScrapeInterval.
	RuleFiles []string
}

// Prometheus is a Debian prometheus server on a loopback port with its own
// temporary data directory.
type Prometheus struct {
	URL     string // http://127.0.0.1:PORT
	DataDir string
	Cmd     *exec.Cmd

	mu  sync.Mutex
	log bytes.Buffer
}

// StartPrometheus starts /usr/bin/prometheus and stops it when the test
// ends. A missing binary skips the test, or fails it with CI=true.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin := LookPath(t, "prometheus")
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	if o.Retention == "" {
		o.Retention = "1d"
	}
	dir := TempDir(t)
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", o.ScrapeInterval, o.ScrapeInterval)
	if len(o.RuleFiles) > 0 {
		cfg += "rule_files: ['" + strings.Join(o.RuleFiles, "','") + "']\n"
	}
	if len(o.ScrapeTargets) > 0 {
		cfg += "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['" + strings.Join(o.ScrapeTargets, "','") + "']\n"
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreeAddr(t)
		p := &Prometheus{URL: "http://" + addr, DataDir: filepath.Join(dir, "data")}
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + p.DataDir,
			"--storage.tsdb.retention.time=" + o.Retention,
			"--web.listen-address=" + addr,
		}
		if o.RemoteWriteReceiver {
			args = append(args, "--web.enable-remote-write-receiver")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout = &promLogWriter{mu: &p.mu, w: &p.log}
		cmd.Stderr = cmd.Stdout
		if err := startTied(cmd); err != nil {
			cancel()
			t.Fatalf("start prometheus: %v", err)
		}
		p.Cmd = cmd
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			cancel()
			<-exited
		}
		err := waitPromHTTP(p.URL+"/-/ready", exited, 30*time.Second)
		if err != nil {
			stop()
			lastErr = fmt.Errorf("%w; log:\n%s", err, p.Log())
			continue
		}
		t.Cleanup(stop)
		return p
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

// Log is everything Prometheus logged so far.
func (p *Prometheus) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// NodeExporter is a Debian prometheus-node-exporter on a loopback port.
type NodeExporter struct {
	Addr string // 127.0.0.1:PORT
	URL  string // http://127.0.0.1:PORT/metrics
	Cmd  *exec.Cmd
}

// StartNodeExporter starts prometheus-node-exporter with its default
// collectors (extra args are appended) and stops it when the test ends.
func StartNodeExporter(t testing.TB, extra ...string) *NodeExporter {
	t.Helper()
	bin := LookPath(t, "prometheus-node-exporter")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		var log bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, append([]string{"--web.listen-address=" + addr}, extra...)...)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := startTied(cmd); err != nil {
			cancel()
			t.Fatalf("start node_exporter: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			cancel()
			<-exited
		}
		n := &NodeExporter{Addr: addr, URL: "http://" + addr + "/metrics", Cmd: cmd}
		if err := waitPromHTTP(n.URL, exited, 15*time.Second); err != nil {
			stop()
			lastErr = fmt.Errorf("%w; log:\n%s", err, log.String())
			continue
		}
		t.Cleanup(stop)
		return n
	}
	t.Fatalf("start node_exporter: %v", lastErr)
	return nil
}

// PromtoolCheckMetrics runs `promtool check metrics` over an exposition
// and returns its findings; err is set only when promtool could not run or
// found the input unparseable (exit status other than 0 and 3, where 3
// means lint findings, which are returned as lines).
func PromtoolCheckMetrics(t testing.TB, exposition string) (findings []string, err error) {
	t.Helper()
	bin := LookPath(t, "promtool")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, runErr := cmd.CombinedOutput()
	if runErr != nil {
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) || ee.ExitCode() != 3 {
			return nil, fmt.Errorf("promtool check metrics: %w: %s", runErr, out)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			findings = append(findings, l)
		}
	}
	return findings, nil
}

// waitPromHTTP waits until url answers 200 or the process exits.
func waitPromHTTP(url string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Poll(ctx, timeout, func() error {
		select {
		case <-exited:
			return errors.New("process exited")
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

type promLogWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *promLogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
