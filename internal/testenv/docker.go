package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DockerOptions configure a test dockerd.
type DockerOptions struct {
	// DataRootSize, when not zero, puts the data root on a tmpfs of this
	// many bytes, for disk-pressure tests. Default: the data root is a
	// plain directory under the temp dir.
	DataRootSize int64
}

// Docker is Debian's dockerd (package docker.io) running for tests with
// everything private: data root, exec root (with its own containerd),
// pid file and API socket in a temp dir, in a network namespace of its own
// (so bridges it creates never touch the host's network), no default
// bridge, no iptables, no registry. Images come from ImportImage and
// LoadImage; containers run busybox from busybox-static.
type Docker struct {
	Host     string // "unix:///.../docker.sock", for DOCKER_HOST
	Socket   string // the socket's path
	Dir      string // everything lives below here
	DataRoot string // --data-root

	opts    DockerOptions
	dockerd string
	cli     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    bytes.Buffer
}

// StartDocker starts a dockerd that is stopped when the test ends. A
// missing dockerd skips the test, or fails it with CI=true. Starting takes
// well under a second here, but packages with many tests should share one
// daemon with SharedDocker.
func StartDocker(t testing.TB, o DockerOptions) *Docker {
	t.Helper()
	d, err := NewDocker(o)
	Require(t, "dockerd", err)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("stop dockerd: %v", err)
		}
	})
	return d
}

// NewDocker starts a dockerd; the caller must Close it.
func NewDocker(o DockerOptions) (*Docker, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, err
	}
	cli, err := dockerCLI()
	if err != nil {
		return nil, err
	}
	if err := checkStatic(busyboxPath); err != nil {
		return nil, fmt.Errorf("busybox-static: %w", err)
	}
	dir, err := os.MkdirTemp("", "hostd-docker-")
	if err != nil {
		return nil, err
	}
	d := &Docker{Dir: dir, DataRoot: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "docker.sock"), opts: o, dockerd: dockerd, cli: cli}
	d.Host = "unix://" + d.Socket
	if o.DataRootSize > 0 {
		if err := os.MkdirAll(d.DataRoot, 0o700); err != nil {
			d.cleanupDir()
			return nil, err
		}
		if err := syscall.Mount("tmpfs", d.DataRoot, "tmpfs", 0, "size="+strconv.FormatInt(o.DataRootSize, 10)); err != nil {
			d.cleanupDir()
			return nil, fmt.Errorf("mount tmpfs data root: %w", err)
		}
	}
	if err := d.Start(); err != nil {
		d.cleanupDir()
		return nil, err
	}
	return d, nil
}

// busyboxPath is the static busybox test images are made of.
const busyboxPath = "/bin/busybox"

// checkStatic makes sure path is a statically linked executable: test
// images hold nothing else, no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (install busybox-static)", path)
		}
	}
	return nil
}

// dockerCLI prefers the CLI of the docker.io package, the same release as
// its dockerd.
func dockerCLI() (string, error) {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker", nil
	}
	return exec.LookPath("docker")
}

// Start starts dockerd (again, after Kill or Stop) on the same data root
// and waits until it answers /_ping.
func (d *Docker) Start() error {
	d.mu.Lock()
	running := d.cmd != nil
	d.mu.Unlock()
	if running {
		return errors.New("dockerd already running")
	}
	d.dropStaleContainerdPid()
	cmd := exec.Command(d.dockerd,
		"--data-root", d.DataRoot,
		"--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", filepath.Join(d.Dir, "dockerd.pid"),
		"-H", d.Host,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver=overlay2", "--log-level=warn",
		"--config-file", d.configFile(),
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	// A network namespace of its own keeps its bridges off the host;
	// startTied stops it if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := startTied(cmd); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			if d.log.Len() < 1<<20 {
				d.log.WriteString(sc.Text() + "\n")
			}
			d.mu.Unlock()
		}
		_ = cmd.Wait()
		close(exited)
	}()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	err = Poll(context.Background(), 30*time.Second, func() error {
		select {
		case <-exited:
			return errExited
		default:
		}
		return d.Ping()
	})
	if err != nil {
		d.Kill()
		return fmt.Errorf("dockerd did not answer: %w; log:\n%s", err, d.Log())
	}
	return nil
}

var errExited = errors.New("dockerd exited")

// dropStaleContainerdPid removes the pid file of a containerd that died
// with a killed dockerd. Where nothing reaps orphans (a container's init)
// it lingers as a zombie, and dockerd would wait for it forever.
func (d *Docker) dropStaleContainerdPid() {
	pidFile := filepath.Join(d.Dir, "exec", "containerd", "containerd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err == nil {
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z' {
			return // alive: dockerd reuses it
		}
	}
	_ = os.Remove(pidFile)
}

// configFile writes an empty daemon.json so the host's /etc/docker one is
// not read.
func (d *Docker) configFile() string {
	p := filepath.Join(d.Dir, "daemon.json")
	_ = os.WriteFile(p, []byte("{}\n"), 0o600)
	return p
}

// Ping calls the engine's /_ping.
func (d *Docker) Ping() error {
	c := http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
		}},
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/_ping: %s", resp.Status)
	}
	return nil
}

// Kill kills dockerd with SIGKILL, as a crash would, and waits for it.
func (d *Docker) Kill() { d.signal(syscall.SIGKILL, 0) }

// Stop stops dockerd with SIGTERM (SIGKILL after 20s) and waits for it.
func (d *Docker) Stop() { d.signal(syscall.SIGTERM, 20*time.Second) }

func (d *Docker) signal(sig syscall.Signal, grace time.Duration) {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-exited
}

// Close stops dockerd and its containerd, unmounts what they left mounted
// and removes the directory.
func (d *Docker) Close() error {
	d.Stop()
	// A dockerd killed earlier may have left its containerd behind.
	if b, err := os.ReadFile(filepath.Join(d.Dir, "exec", "containerd", "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if p, err := os.FindProcess(pid); err == nil && p.Signal(syscall.Signal(0)) == nil {
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.Contains(exe, "containerd") {
					_ = p.Kill()
				}
			}
		}
	}
	return d.cleanupDir()
}

func (d *Docker) cleanupDir() error {
	if err := unmountBelow(d.Dir); err != nil {
		return err
	}
	return os.RemoveAll(d.Dir)
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Log is what dockerd printed so far.
func (d *Docker) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Run runs the docker CLI against this daemon and returns its trimmed
// standard output.
func (d *Docker) Run(stdin []byte, args ...string) (string, error) {
	return d.run(stdin, nil, args...)
}

func (d *Docker) run(stdin []byte, env []string, args ...string) (string, error) {
	cmd := exec.Command(d.cli, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DOCKER_HOST=" + d.Host, "HOME=" + d.Dir, "DOCKER_CONFIG=" + filepath.Join(d.Dir, "cli")}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(out.String()), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// CLI runs the docker CLI and fails the test on error.
func (d *Docker) CLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.Run(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ImageSpec describes a test image.
type ImageSpec struct {
	// Labels are the image's config labels.
	Labels map[string]string
	// Payload adds a file of this many random bytes, so images differ and
	// take the given room on disk.
	Payload int
}

// ImportImage makes an image with `docker import` of a generated tarball
// holding busybox, tagged ref ("" for an untagged, dangling image), and
// returns its ID. Its creation time is now.
func (d *Docker) ImportImage(t testing.TB, ref string, spec ImageSpec) string {
	t.Helper()
	layer, err := imageLayer(spec.Payload)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"import", "-c", `CMD ["/bin/busybox","sleep","3600"]`}
	for _, k := range sortedKeys(spec.Labels) {
		args = append(args, "-c", fmt.Sprintf("LABEL %s=%s", k, strconv.Quote(spec.Labels[k])))
	}
	args = append(args, "-")
	if ref != "" {
		args = append(args, ref)
	}
	out, err := d.Run(layer, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// LoadImage makes an image with `docker load` of a generated image
// archive, so its creation time can be in the past, and returns its ID.
// ref "" loads it untagged.
func (d *Docker) LoadImage(t testing.TB, ref string, created time.Time, spec ImageSpec) string {
	t.Helper()
	layer, err := imageLayer(spec.Payload)
	if err != nil {
		t.Fatal(err)
	}
	diffID := sha256.Sum256(layer)
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      created.UTC().Format(time.RFC3339Nano),
		"config":       map[string]any{"Cmd": []string{"/bin/busybox", "sleep", "3600"}, "Labels": spec.Labels},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		"history":      []map[string]any{{"created": created.UTC().Format(time.RFC3339Nano), "created_by": "hostd testenv"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgID := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgID[:]) + ".json"
	layerName := hex.EncodeToString(diffID[:]) + "/layer.tar"
	var tags []string
	if ref != "" {
		tags = []string{ref}
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": tags, "Layers": []string{layerName}}})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := tarFiles([]tarFile{
		{name: cfgName, data: cfg, mode: 0o644},
		{name: layerName, data: layer, mode: 0o644},
		{name: "manifest.json", data: manifest, mode: 0o644},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Run(archive, "load", "-q"); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(cfgID[:])
}

// Build builds an image with BuildKit from a context holding files (one of
// them the Dockerfile), tagged ref, leaving build cache records behind.
// Builds cannot reach a network: Dockerfiles use FROM a local image and
// COPY, not RUN.
func (d *Docker) Build(t testing.TB, ref string, files map[string][]byte) {
	t.Helper()
	var tf []tarFile
	for _, name := range sortedKeys(files) {
		tf = append(tf, tarFile{name: name, data: files[name], mode: 0o644})
	}
	archive, err := tarFiles(tf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.run(archive, []string{"DOCKER_BUILDKIT=1"}, "build", "-q", "-t", ref, "-"); err != nil {
		t.Fatal(err)
	}
}

type tarFile struct {
	name string
	data []byte
	mode int64
}

// imageLayer is a root filesystem with busybox and payload random bytes.
func imageLayer(payload int) ([]byte, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	files := []tarFile{{name: "bin/busybox", data: bb, mode: 0o755}, {name: "tmp/", mode: 0o1777}}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	files = append(files, tarFile{name: "etc/id", data: []byte(hex.EncodeToString(nonce) + "\n"), mode: 0o644})
	if payload > 0 {
		p := make([]byte, payload)
		_, _ = rand.Read(p)
		files = append(files, tarFile{name: "payload", data: p, mode: 0o644})
	}
	return tarFiles(files)
}

func tarFiles(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for dir := filepath.Dir(strings.TrimSuffix(f.name, "/")); dir != "." && !dirs[dir]; dir = filepath.Dir(dir) {
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return nil, err
			}
		}
		if strings.HasSuffix(f.name, "/") {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeDir, Mode: f.mode, ModTime: time.Unix(0, 0)}); err != nil {
				return nil, err
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SharedDocker is one dockerd shared by the tests of a package: the first
// Get starts it, Close (from TestMain, after m.Run) stops it. Tests give
// their objects their own names and labels.
type SharedDocker struct {
	Options DockerOptions

	once sync.Once
	d    *Docker
	err  error
}

// Get returns the shared daemon, starting it on first use.
func (s *SharedDocker) Get(t testing.TB) *Docker {
	t.Helper()
	s.once.Do(func() { s.d, s.err = NewDocker(s.Options) })
	Require(t, "dockerd", s.err)
	if err := s.d.Ping(); err != nil {
		// A test stopped it; bring it back for the next one.
		if err := s.d.Start(); err != nil {
			t.Fatalf("restart shared dockerd: %v", err)
		}
	}
	return s.d
}

// Close stops the shared daemon if it was started.
func (s *SharedDocker) Close() error {
	if s.d == nil {
		return nil
	}
	return s.d.Close()
}
