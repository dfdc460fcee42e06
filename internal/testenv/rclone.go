package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Rclone returns the path of Debian's rclone, and points rclone at an
// empty config file for the rest of the test (RCLONE_CONFIG), so the
// user's remotes never take part: tests define theirs in the
// environment (RCLONE_CONFIG_<NAME>_<OPTION>).
func Rclone(t *testing.T) string {
	t.Helper()
	bin := LookPath(t, "rclone")
	cfg := filepath.Join(t.TempDir(), "rclone.conf")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RCLONE_CONFIG", cfg)
	return bin
}

// RcloneS3Remote defines the rclone remote NAME for the SeaweedFS
// cluster s in the test's environment; the keys come from the
// test's environment too.
func RcloneS3Remote(t *testing.T, name string, s *SeaweedFS) {
	t.Helper()
	// rclone's S3 client cannot apply a custom CA bundle to its own
	// transport and refuses to start with one; loopback needs none.
	t.Setenv("AWS_CA_BUNDLE", "")
	os.Unsetenv("AWS_CA_BUNDLE")
	p := "RCLONE_CONFIG_" + name + "_"
	for k, v := range map[string]string{
		"TYPE": "s3", "PROVIDER": "SeaweedFS", "ENDPOINT": s.Endpoint, "REGION": "us-east-1",
		"ACCESS_KEY_ID": s.AccessKey, "SECRET_ACCESS_KEY": s.SecretKey, "FORCE_PATH_STYLE": "true",
	} {
		t.Setenv(p+k, v)
	}
}

// RcloneREST is `rclone serve restic` on a loopback port: a rest-server.
type RcloneREST struct {
	URL  string // http://127.0.0.1:PORT/
	Addr string

	mu  sync.Mutex
	log bytes.Buffer
}

func (r *RcloneREST) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log.Len() > 1<<20 {
		r.log.Reset()
	}
	return r.log.Write(p)
}

// Log returns what rclone wrote.
func (r *RcloneREST) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// StartRcloneREST serves REMOTE:PATH (a local directory is ":local:DIR"
// or just DIR) with `rclone serve restic --addr 127.0.0.1:PORT`, waits
// until it accepts connections, and stops it when the test ends. Extra
// arguments go before the remote.
func StartRcloneREST(t *testing.T, remote string, args ...string) *RcloneREST {
	t.Helper()
	return startRcloneREST(t, remote, nil, args...)
}

// StartRcloneRESTTLS is StartRcloneREST serving https with cert
// (NewTLSCert): URL is https://127.0.0.1:PORT/.
func StartRcloneRESTTLS(t *testing.T, remote string, cert *TLSCert, args ...string) *RcloneREST {
	t.Helper()
	return startRcloneREST(t, remote, cert, args...)
}

func startRcloneREST(t *testing.T, remote string, cert *TLSCert, args ...string) *RcloneREST {
	t.Helper()
	bin := Rclone(t)
	r := &RcloneREST{}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		r.Addr = FreeAddr(t)
		r.URL = "http://" + r.Addr + "/"
		a := []string{"serve", "restic", "--addr", r.Addr}
		if cert != nil {
			r.URL = "https://" + r.Addr + "/"
			a = append(a, "--cert", cert.CertFile, "--key", cert.KeyFile)
		}
		a = append(a, args...)
		cmd := exec.Command(bin, append(a, remote)...)
		cmd.Stdout, cmd.Stderr = r, r
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := startTied(cmd); err != nil {
			t.Fatalf("start rclone: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stop := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done }
		err := Poll(context.Background(), 20*time.Second, func() error {
			select {
			case <-done:
				return fmt.Errorf("rclone exited: %s", r.Log())
			default:
			}
			return DialWait(context.Background(), "tcp", r.Addr, 50*time.Millisecond)
		})
		if err == nil {
			t.Cleanup(stop)
			return r
		}
		stop()
		lastErr = err
	}
	t.Fatalf("start rclone serve restic: %v", lastErr)
	return nil
}
