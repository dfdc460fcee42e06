package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// headlessWirePlumber switches off every WirePlumber device monitor (ALSA,
// Bluetooth, V4L2, libcamera): the test machine has no hardware and no
// system bus. The file names sort before WirePlumber's 90-enable-all.lua,
// which reads these settings.
var headlessWirePlumber = map[string]string{
	"main.lua.d/51-hostd-headless.lua": "alsa_monitor.enabled = false\n" +
		"v4l2_monitor.enabled = false\nlibcamera_monitor.enabled = false\n",
	"bluetooth.lua.d/51-hostd-headless.lua": "bluez_monitor.enabled = false\n",
}

// PipeWire is a private, headless PipeWire stack: a session D-Bus,
// pipewire, wireplumber and pipewire-pulse, all with their own runtime,
// config and state directories, so nothing touches the user's session.
type PipeWire struct {
	// RuntimeDir is the private XDG_RUNTIME_DIR (mode 0700).
	RuntimeDir string
	// Server is the pulse server address, "unix:<RuntimeDir>/pulse/native".
	Server string
	// Socket is the pulse socket's path.
	Socket string

	root string
	env  []string

	mu    sync.Mutex
	procs map[string]*pwProc
}

type pwProc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// StartPipeWire starts the stack, waits until the pulse server answers and
// WirePlumber has published the default-device metadata, and stops it all
// when the test ends. Missing binaries skip the test, or fail it with
// CI=true.
func StartPipeWire(t testing.TB) *PipeWire {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "pipewire", "wireplumber", "pipewire-pulse", "pactl", "pw-metadata"} {
		_, err := exec.LookPath(bin)
		Require(t, "PipeWire stack ("+bin+")", err)
	}
	root := TempDir(t)
	p := &PipeWire{root: root, RuntimeDir: filepath.Join(root, "run"), procs: map[string]*pwProc{}}
	p.Socket = filepath.Join(p.RuntimeDir, "pulse", "native")
	p.Server = "unix:" + p.Socket
	for _, d := range []string{"run", "home", "config", "state", "data", "log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatalf("create PipeWire dirs: %v", err)
		}
	}
	if err := os.Chmod(p.RuntimeDir, 0o700); err != nil {
		t.Fatalf("chmod runtime dir: %v", err)
	}
	for name, text := range headlessWirePlumber {
		path := filepath.Join(root, "config", "wireplumber", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatalf("write WirePlumber config: %v", err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatalf("write WirePlumber config: %v", err)
		}
	}
	bus := "unix:path=" + filepath.Join(p.RuntimeDir, "bus")
	p.env = append(cleanEnv(os.Environ()),
		"XDG_RUNTIME_DIR="+p.RuntimeDir,
		"PIPEWIRE_RUNTIME_DIR="+p.RuntimeDir,
		"HOME="+filepath.Join(root, "home"),
		"XDG_CONFIG_HOME="+filepath.Join(root, "config"),
		"XDG_STATE_HOME="+filepath.Join(root, "state"),
		"XDG_DATA_HOME="+filepath.Join(root, "data"),
		"DBUS_SESSION_BUS_ADDRESS="+bus,
		"PULSE_SERVER="+p.Server,
		"PIPEWIRE_LOG_SYSTEMD=false",
		"DISABLE_RTKIT=1",
	)
	t.Cleanup(func() { p.stopAll(t) })

	p.start(t, "dbus-daemon", "--session", "--nofork", "--nopidfile", "--address="+bus)
	p.waitSocket(t, filepath.Join(p.RuntimeDir, "bus"))
	p.start(t, "pipewire")
	p.waitSocket(t, filepath.Join(p.RuntimeDir, "pipewire-0"))
	p.start(t, "wireplumber")
	p.StartPulse(t)
	// WirePlumber provides the "default" metadata that default-device
	// changes go through; wait for it so tests do not race its start.
	WaitFor(t, 15*time.Second, func() error {
		out, err := p.run(context.Background(), "pw-metadata", "-n", "default")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Found \"default\" metadata") {
			return fmt.Errorf("WirePlumber has not published the default metadata: %q", out)
		}
		return nil
	})
	return p
}

// cleanEnv drops variables that would point the stack at the user's session.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "DBUS_SESSION_BUS_ADDRESS", k == "PULSE_COOKIE", k == "DISPLAY", k == "WAYLAND_DISPLAY",
			strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "PIPEWIRE_"), strings.HasPrefix(k, "PULSE_"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Env is the environment the stack runs in; clients (pactl) need it.
func (p *PipeWire) Env() []string { return append([]string(nil), p.env...) }

func (p *PipeWire) start(t testing.TB, name string, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(p.root, "log", name+".log"))
	if err != nil {
		t.Fatalf("create %s log: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = p.env
	cmd.Dir = p.root
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startTied(cmd); err != nil {
		logf.Close()
		Require(t, name, err)
	}
	pr := &pwProc{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(pr.done)
	}()
	p.mu.Lock()
	p.procs[name] = pr
	p.mu.Unlock()
}

func (p *PipeWire) waitSocket(t testing.TB, path string) {
	t.Helper()
	WaitFor(t, 10*time.Second, func() error {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			return fmt.Errorf("%v (logs: %s)", err, p.logs())
		}
		return c.Close()
	})
}

// StartPulse starts pipewire-pulse (again, after KillPulse) and waits until
// it answers pactl.
func (p *PipeWire) StartPulse(t testing.TB) {
	t.Helper()
	p.start(t, "pipewire-pulse")
	WaitFor(t, 10*time.Second, func() error {
		_, err := p.run(context.Background(), "pactl", "info")
		return err
	})
}

// KillPulse kills pipewire-pulse with SIGKILL and waits until it is gone:
// every pulse client loses its connection and every module loaded through
// pactl (null sinks) disappears.
func (p *PipeWire) KillPulse(t testing.TB) {
	t.Helper()
	p.kill(t, "pipewire-pulse")
	_ = os.Remove(p.Socket)
}

func (p *PipeWire) kill(t testing.TB, name string) {
	t.Helper()
	p.mu.Lock()
	pr := p.procs[name]
	delete(p.procs, name)
	p.mu.Unlock()
	if pr == nil {
		return
	}
	_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-pr.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) did not exit after SIGKILL", name, pr.cmd.Process.Pid)
	}
	pr.log.Close()
}

func (p *PipeWire) stopAll(t testing.TB) {
	if t.Failed() {
		t.Logf("PipeWire logs:\n%s", p.logs())
	}
	for _, name := range []string{"pipewire-pulse", "wireplumber", "pipewire", "dbus-daemon"} {
		p.kill(t, name)
	}
}

// logs returns the tail of every component's log.
func (p *PipeWire) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(p.root, "log", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "== %s ==\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// run runs a PipeWire/pulse client tool against the stack.
func (p *PipeWire) run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Tool runs a PipeWire or pulse client tool (pw-metadata, pw-cli, pactl)
// against the stack and fails the test if it fails.
func (p *PipeWire) Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := p.run(context.Background(), name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// PactlErr runs pactl against the stack and returns its output.
func (p *PipeWire) PactlErr(args ...string) (string, error) {
	out, err := p.run(context.Background(), "pactl", args...)
	return strings.TrimSpace(out), err
}

// Pactl runs pactl against the stack and fails the test if it fails.
func (p *PipeWire) Pactl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.PactlErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NullSinkOptions describe a null sink.
type NullSinkOptions struct {
	// Description is device.description; default: the name.
	Description string
	// Properties are more sink properties, for example
	// {"device.bus": "bluetooth"}. Values must not contain quotes.
	Properties map[string]string
}

// LoadNullSink creates a null sink (and its monitor source) with
// `pactl load-module module-null-sink` and waits until the pulse server
// lists it. It returns the module index.
func (p *PipeWire) LoadNullSink(t testing.TB, name string, o NullSinkOptions) string {
	t.Helper()
	if o.Description == "" {
		o.Description = name
	}
	props := []string{"device.description='" + o.Description + "'"}
	for k, v := range o.Properties {
		props = append(props, k+"='"+v+"'")
	}
	idx := p.Pactl(t, "load-module", "module-null-sink", "sink_name="+name,
		`sink_properties="`+strings.Join(props, " ")+`"`)
	WaitFor(t, 5*time.Second, func() error {
		out, err := p.PactlErr("list", "short", "sinks")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] == name {
				return nil
			}
		}
		return fmt.Errorf("sink %s not listed: %s", name, out)
	})
	return idx
}

// DefaultSink is `pactl get-default-sink`.
func (p *PipeWire) DefaultSink(t testing.TB) string {
	t.Helper()
	return p.Pactl(t, "get-default-sink")
}
