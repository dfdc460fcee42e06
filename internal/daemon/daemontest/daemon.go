package daemontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/testenv"
)

// Daemon is a hostd daemon run in-process by a test, in a private
// directory, until the test ends.
type Daemon struct {
	// Dir is the daemon's private directory: config, state and log.
	Dir string
	// Socket is the local API socket.
	Socket string
	// HTTP is the HTTP listener's address.
	HTTP string
	// ConfigFile is the config the daemon runs on.
	ConfigFile string
}

// Options configure Start. Zero fields take the defaults in the comments.
type Options struct {
	// Registrations are the services the daemon knows.
	Registrations []daemon.Registration
	// Config returns the config file's text, given the Daemon with Dir,
	// Socket and HTTP set. Default: d.HostdSection() followed by Sections.
	Config func(d *Daemon) string
	// Sections are the service sections of the default config, such as
	// "alpha: {}\nbeta:\n  mode: error\n".
	Sections string
	// Getenv is the daemon's environment. Default: os.Getenv.
	Getenv func(string) string
	// ReadyTimeout bounds the wait for the socket to answer. Default: 10s.
	ReadyTimeout time.Duration
	// StopTimeout bounds the wait for the daemon to stop when the test
	// ends. Default: 30s.
	StopTimeout time.Duration
}

// Start writes the config, runs the daemon in-process until the test ends
// and waits until its socket answers GET /v1/status. When the test ends
// the daemon is stopped; an error it returns fails the test, and its log
// is printed if the test failed.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 30 * time.Second
	}
	dir := testenv.TempDir(t)
	d := &Daemon{
		Dir:        dir,
		Socket:     filepath.Join(dir, "hostd.sock"),
		HTTP:       testenv.FreeAddr(t),
		ConfigFile: filepath.Join(dir, "hostd.yaml"),
	}
	cfg := d.HostdSection() + opts.Sections
	if opts.Config != nil {
		cfg = opts.Config(d)
	}
	if err := os.WriteFile(d.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write daemon config: %v", err)
	}
	logf, err := os.Create(d.logFile())
	if err != nil {
		t.Fatalf("create daemon log: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigFile:    d.ConfigFile,
			Registrations: opts.Registrations,
			Version:       "test",
			Getenv:        opts.Getenv,
			Stderr:        logf,
			Signals:       make(chan os.Signal),
		})
	}()
	exited := make(chan struct{}) // closed once done has been read
	var runErr error
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case runErr = <-done:
			close(exited)
		case <-time.After(opts.StopTimeout):
			t.Errorf("daemon did not stop within %s", opts.StopTimeout)
		}
		if runErr != nil {
			t.Errorf("daemon: %v", runErr)
		}
		_ = logf.Close()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	testenv.WaitFor(t, opts.ReadyTimeout, func() error {
		select {
		case <-exited:
			return nil // reported below
		case runErr = <-done:
			close(exited)
			return nil
		default:
		}
		return d.Client().Get(context.Background(), api.RouteStatus, &api.Status{})
	})
	select {
	case <-exited:
		t.Fatalf("daemon exited before its socket answered: %v", runErr)
	default:
	}
	return d
}

// HostdSection returns a config's hostd section that keeps everything in
// d.Dir, with a short restart backoff (50ms), plus each of extra (such as
// "log_level: debug") as a line of the section.
func (d *Daemon) HostdSection(extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostd:\n  state_dir: %s\n  socket: %s\n  http:\n    listen: %s\n  restart_backoff: 50ms\n",
		filepath.Join(d.Dir, "state"), d.Socket, d.HTTP)
	for _, line := range extra {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// Client returns a client of the daemon's socket.
func (d *Daemon) Client() *api.Client { return api.NewClient(d.Socket) }

// Log returns what the daemon has logged so far.
func (d *Daemon) Log() string {
	b, err := os.ReadFile(d.logFile())
	if err != nil {
		return fmt.Sprintf("(read daemon log: %v)", err)
	}
	return string(b)
}

// ServiceStatus returns the named service's entry of GET /v1/status.
func (d *Daemon) ServiceStatus(ctx context.Context, name string) (api.ServiceStatus, error) {
	var st api.Status
	if err := d.Client().Get(ctx, api.RouteStatus, &st); err != nil {
		return api.ServiceStatus{}, err
	}
	for _, s := range st.Services {
		if s.Name == name {
			return s, nil
		}
	}
	return api.ServiceStatus{}, errors.New("no service " + name + " in the daemon's status")
}

func (d *Daemon) logFile() string { return filepath.Join(d.Dir, "log") }
