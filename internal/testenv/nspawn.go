package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The Debian root the systemd tests boot: what debootstrap installs on top
// of its minbase variant. A change here changes the cache key, so the next
// run builds a new root.
const (
	debianSuite   = "bookworm"
	debianVariant = "minbase"
	// systemd as PID 1 (systemd-sysv), dbus for systemctl's bus, iproute2
	// for network namespaces and links.
	debianInclude = "systemd,systemd-sysv,dbus,iproute2"
	// debianMirrorDefault is used when the apt sources name none.
	debianMirrorDefault = "http://deb.debian.org/debian"
	// debootstrapTimeout bounds building the root (several minutes on a
	// slow mirror).
	debootstrapTimeout = 20 * time.Minute
	// bootTimeout bounds booting the container up to a running system
	// (well under a second on a warm cache, seconds on a busy machine).
	bootTimeout = 2 * time.Minute
)

// DebianRoot returns a minimal Debian root (debootstrap --variant=minbase
// with systemd, dbus and iproute2) for booting with systemd-nspawn. It is
// built once per machine under the user cache directory
// (~/.cache/hostd-test/debian-SUITE-KEY/root) and reused; the build goes to
// a temporary directory renamed into place once debootstrap has finished,
// so an interrupted build never leaves a half root. Callers must not write
// to it: BootContainer boots an overlay on top of it.
func DebianRoot(ctx context.Context) (string, error) {
	if os.Geteuid() != 0 {
		return "", ErrNotRoot
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	base := filepath.Join(cache, "hostd-test")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(debianSuite + "\n" + debianVariant + "\n" + debianInclude))
	final := filepath.Join(base, "debian-"+debianSuite+"-"+hex.EncodeToString(sum[:6]))
	root := filepath.Join(final, "root")
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/systemd")); err == nil {
		return root, nil
	}

	// One build per machine at a time: other test binaries wait here.
	lock, err := os.OpenFile(filepath.Join(base, "debian.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/systemd")); err == nil {
		return root, nil
	}
	// Builds interrupted before (holding the lock, nobody else builds).
	stale, _ := filepath.Glob(filepath.Join(base, "debian-*.tmp*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(base, filepath.Base(final)+".tmp")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, debootstrapTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, debootstrap, "--variant="+debianVariant, "--include="+debianInclude,
		debianSuite, filepath.Join(tmp, "root"), debianMirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("debootstrap %s: %w\n%s", debianSuite, err, tail(out, 4096))
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("move the new root into place: %w", err)
	}
	return root, nil
}

// debianMirror is the first Debian archive (not the security one) in
// apt's sources, so the root comes from the mirror the host uses.
func debianMirror() string {
	var files []string
	files, _ = filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(append(files, "/etc/apt/sources.list"), lists...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) > 1<<20 {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			var uris []string
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:":
				uris = fields[1:]
			case len(fields) >= 3 && fields[0] == "deb" && !strings.HasPrefix(fields[1], "["):
				uris = fields[1:2]
			}
			for _, u := range uris {
				if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
					return strings.TrimSuffix(u, "/")
				}
			}
		}
	}
	return debianMirrorDefault
}

// ContainerOptions configure a booted Debian container.
type ContainerOptions struct {
	// Binds are host paths bound into the container, as systemd-nspawn's
	// --bind takes them: "SRC" or "SRC:DST".
	Binds []string
}

// Container is the Debian root from DebianRoot booted with
// `systemd-nspawn --boot`: systemd as PID 1, its own network namespace
// holding only loopback, and its file system an overlay on the cached
// root, thrown away by Close. Commands run inside with nsenter.
type Container struct {
	Root   string // the container's file system as the host sees it
	Leader int    // the container's PID 1 as the host sees it
	Name   string // its machine (host) name

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

// BootContainer boots the cached Debian root and waits until systemd
// reports the system running. The caller must Close it.
func BootContainer(ctx context.Context, o ContainerOptions) (*Container, error) {
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return nil, err
	}
	lower, err := DebianRoot(ctx)
	if err != nil {
		return nil, fmt.Errorf("debian root: %w", err)
	}
	reapContainerDirs(os.TempDir())
	dir, err := os.MkdirTemp("", containerDirPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(processID(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b := make([]byte, 4)
	rand.Read(b)
	c := &Container{Root: filepath.Join(dir, "root"), Name: "hostd-test-" + hex.EncodeToString(b), dir: dir, exited: make(chan struct{}), log: &syncBuffer{}}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	if err := syscall.Mount("overlay", c.Root, "overlay", 0, opts); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mount overlay on %s: %w", lower, err)
	}
	args := []string{"--boot", "--register=no", "--keep-unit", "--private-network",
		"--console=pipe", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
		"--machine=" + c.Name, "-D", c.Root,
		// nspawn filters all of @clock from a container without
		// CAP_SYS_TIME, even the read-only adjtimex(2) any process on
		// a host may make (the metrics' timex collector): allow that
		// one; the kernel still refuses changes without CAP_SYS_TIME.
		"--system-call-filter=adjtimex"}
	for _, bind := range o.Binds {
		args = append(args, "--bind="+bind)
	}
	c.cmd = exec.Command(nspawn, args...)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	// systemd-nspawn runs as the first process of a PID namespace of its
	// own: when it dies (startTied kills it with the test binary), the
	// kernel kills every process of that namespace and of the
	// container's inside it. Killing nspawn alone leaves the container's
	// systemd running.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := startTied(c.cmd); err != nil {
		c.cleanup()
		return nil, fmt.Errorf("start systemd-nspawn: %w", err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	if err := c.waitBoot(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitBoot finds the container's PID 1 (the child of systemd-nspawn) and
// waits until `systemctl is-system-running` says running or degraded.
func (c *Container) waitBoot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	err := Poll(ctx, bootTimeout, func() error {
		select {
		case <-c.exited:
			return errors.New("systemd-nspawn exited")
		default:
		}
		if c.Leader == 0 {
			pid, err := childOf(c.cmd.Process.Pid)
			if err != nil {
				return err
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) != "systemd" {
				return fmt.Errorf("container pid 1 is %q, not systemd yet", strings.TrimSpace(string(comm)))
			}
			c.Leader = pid
		}
		out, _ := c.Exec(ctx, "systemctl", "is-system-running")
		switch s := strings.TrimSpace(string(out)); s {
		case "running", "degraded":
			return nil
		default:
			return fmt.Errorf("system is %q", s)
		}
	})
	if err != nil {
		return fmt.Errorf("boot container %s: %w\n%s", c.Name, err, tail(c.log.Bytes(), 4096))
	}
	return nil
}

// childOf returns the first child process of pid.
func childOf(pid int) (int, error) {
	if c := children(pid); len(c) > 0 {
		return c[0], nil
	}
	return 0, fmt.Errorf("process %d has no child yet", pid)
}

// children returns the pids of pid's children, as its threads list them
// (/proc/PID/task/*/children).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// containerExecTimeout bounds one command run inside when the caller's
// context has no earlier deadline.
const containerExecTimeout = 2 * time.Minute

// Exec runs a command inside the container (every namespace of its PID 1,
// so the container's file system, network and PID 1) with a plain
// environment, and returns its standard output and error together.
func (c *Container) Exec(ctx context.Context, args ...string) ([]byte, error) {
	return c.nsenter(ctx, []string{"-a"}, args)
}

// ExecNet runs a host program in the container's network namespace only:
// for host tools (dig, curl) the minimal root does not have.
func (c *Container) ExecNet(ctx context.Context, args ...string) ([]byte, error) {
	return c.nsenter(ctx, []string{"-n"}, args)
}

func (c *Container) nsenter(ctx context.Context, ns, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, containerExecTimeout)
	defer cancel()
	full := append(append([]string{"-t", strconv.Itoa(c.Leader)}, ns...), "--")
	cmd := exec.CommandContext(ctx, "nsenter", append(full, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C", "TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in container: %s: %w: %s", strings.Join(args, " "), err, tail(out, 2048))
	}
	return out, nil
}

// WriteFile writes a file inside the container (path is the container's),
// creating its directory.
func (c *Container) WriteFile(path string, data []byte, perm os.FileMode) error {
	p := filepath.Join(c.Root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, perm)
}

// UnitProperty returns one property of a unit (systemctl show -P).
func (c *Container) UnitProperty(ctx context.Context, unit, prop string) (string, error) {
	out, err := c.Exec(ctx, "systemctl", "show", "-P", prop, unit)
	return strings.TrimSpace(string(out)), err
}

// WaitUnit waits until unit's ActiveState is state (active, failed,
// inactive, ...) and returns the last state seen.
func (c *Container) WaitUnit(ctx context.Context, unit, state string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() error {
		s, err := c.UnitProperty(ctx, unit, "ActiveState")
		if err != nil {
			return err
		}
		if s != state {
			return fmt.Errorf("%s is %s, not %s", unit, s, state)
		}
		return nil
	})
}

// Journal returns journalctl's output inside the container for args
// (e.g. "-u", "hostd", "-p", "err").
func (c *Container) Journal(ctx context.Context, args ...string) (string, error) {
	out, err := c.Exec(ctx, append([]string{"journalctl", "--no-pager", "-q"}, args...)...)
	return string(out), err
}

// Log is systemd-nspawn's own output (the container's console).
func (c *Container) Log() string { return string(c.log.Bytes()) }

// Close kills the container (its PID 1, and with it every process in its
// PID namespace), then unmounts and removes its overlay.
func (c *Container) Close() error {
	if c.Leader > 0 {
		_ = syscall.Kill(c.Leader, syscall.SIGKILL)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	return c.cleanup()
}

func (c *Container) cleanup() error {
	var err error
	if e := syscall.Unmount(c.Root, syscall.MNT_DETACH); e != nil && !errors.Is(e, syscall.EINVAL) {
		err = fmt.Errorf("unmount %s: %w", c.Root, e)
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// syncBuffer is a bytes.Buffer safe for a process's output and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// containerDirPrefix names the directories of BootContainer's containers
// under the temporary directory: the overlay's upper, work and root, and
// the owner file (the test process, as processID writes it).
const containerDirPrefix = "hostd-nspawn-"

// processID identifies a process across pid reuse: its pid and its start
// time in clock ticks after boot (/proc/PID/stat); empty once it is gone.
func processID(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:])) // state is f[0], starttime the 22nd field of the line
	if len(f) < 20 || f[0] == "Z" {
		return ""
	}
	return strconv.Itoa(pid) + " " + f[19]
}

// reapContainerDirs unmounts and removes the container directories under
// tmp whose test process is gone: Close never ran for them (the test
// binary was killed; its container died with it, see BootContainer), and
// their overlay stayed mounted. Directories without an owner file, or
// whose owner still runs, are left alone.
func reapContainerDirs(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, containerDirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, _, _ := strings.Cut(string(owner), " ")
		n, err := strconv.Atoi(pid)
		if err != nil || processID(n) == string(owner) {
			continue
		}
		if err := syscall.Unmount(filepath.Join(dir, "root"), syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
