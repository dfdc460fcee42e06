package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SSHD is a real OpenSSH sshd on a loopback port that accepts one
// generated user key for the current user and serves SFTP.
type SSHD struct {
	Addr       string // 127.0.0.1:PORT
	Port       int
	User       string
	KeyFile    string // private key of the accepted user key (no passphrase)
	KnownHosts string // known_hosts line for the generated host key
	Dir        string // scratch directory (config, keys, log)

	mu  sync.Mutex
	log bytes.Buffer
}

// Log returns what sshd wrote to stderr.
func (s *SSHD) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *SSHD) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

// StartSSHD starts sshd with a fresh host key and user key, waits until it
// accepts connections, and stops it when the test ends. A missing sshd or
// ssh-keygen skips the test, or fails it with CI=true.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/sshd", "/sbin/sshd"} {
			if _, serr := os.Stat(p); serr == nil {
				sshd, err = p, nil
			}
		}
	}
	Require(t, "sshd (openssh-server)", err)
	keygen := LookPath(t, "ssh-keygen")
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	dir := TempDir(t)
	s := &SSHD{User: u.Username, Dir: dir}
	gen := func(name string) {
		t.Helper()
		out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "hostd-test", "-f", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %s: %v: %s", name, err, out)
		}
	}
	gen("host_key")
	gen("user_key")
	s.KeyFile = filepath.Join(dir, "user_key")
	pub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Privilege separation directory sshd insists on as root.
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = FreePort(t)
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
		fields := strings.Fields(string(hostPub))
		s.KnownHosts = fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, fields[0], fields[1])
		cfg := strings.Join([]string{
			"ListenAddress " + s.Addr,
			"HostKey " + filepath.Join(dir, "host_key"),
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PidFile none",
			"StrictModes no",
			"UsePAM no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"PermitRootLogin prohibit-password",
			"AllowUsers " + s.User,
			"Subsystem sftp internal-sftp",
			"LogLevel VERBOSE",
			"",
		}, "\n")
		cfgPath := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, sshd, "-D", "-e", "-f", cfgPath)
		cmd.Stdout, cmd.Stderr = s, s
		if err := startTied(cmd); err != nil {
			cancel()
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cancel()
			<-exited
		}
		err := Poll(ctx, 10*time.Second, func() error {
			select {
			case err := <-exited:
				exited <- err
				return fmt.Errorf("sshd exited: %v", err)
			default:
			}
			return DialWait(ctx, "tcp", s.Addr, 50*time.Millisecond)
		})
		if err != nil {
			stop()
			lastErr = fmt.Errorf("%w; log:\n%s", err, s.Log())
			continue
		}
		t.Cleanup(stop)
		return s
	}
	t.Fatalf("start sshd: %v", lastErr)
	return nil
}

// WriteKnownHosts writes the host key line to a known_hosts file in Dir
// and returns its path.
func (s *SSHD) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(s.Dir, "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHosts), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartSSHAgent starts a real ssh-agent on a socket of its own, loads the
// given private keys into it with ssh-add, and returns the socket path
// (for SSH_AUTH_SOCK). The agent is stopped at cleanup.
func StartSSHAgent(t testing.TB, keys ...string) string {
	t.Helper()
	agentBin := LookPath(t, "ssh-agent")
	addBin := LookPath(t, "ssh-add")
	sock := filepath.Join(TempDir(t), "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, agentBin, "-D", "-a", sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := startTied(cmd); err != nil {
		cancel()
		t.Fatalf("start ssh-agent: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited })
	WaitFor(t, 10*time.Second, func() error {
		select {
		case <-exited:
			return fmt.Errorf("ssh-agent exited: %s", out.String())
		default:
		}
		return DialWait(ctx, "unix", sock, 50*time.Millisecond)
	})
	for _, k := range keys {
		add := exec.Command(addBin, k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if b, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", k, err, b)
		}
	}
	return sock
}
