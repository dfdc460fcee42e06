package backup_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// S3 (SeaweedFS) and REST (rclone serve restic) over https with a
// private CA, as restic's --cacert: the right CA file → init, backup,
// check --read-data and restore pass; another CA, or the system's roots,
// → a clear error at once (no retries), naming the repository and the
// x509 reason; a CA file that is no regular file, or holds no
// certificate, → an error naming the file.
func TestRemoteTLS(t *testing.T) {
	ctx := context.Background()
	cert := testenv.NewTLSCert(t)
	s := testenv.StartSeaweedFSWith(t, testenv.SeaweedOptions{TLS: cert})
	rest := testenv.StartRcloneRESTTLS(t, filepath.Join(t.TempDir(), "repo"), cert)
	backends := []struct {
		name, url string
		opts      func(t *testing.T) backend.Options
	}{
		{"s3", "s3:" + s.Endpoint + "/tls/host1", func(t *testing.T) backend.Options { return seaweedOpts(t, s) }},
		{"rest", "rest:" + rest.URL, func(*testing.T) backend.Options { return backend.Options{} }},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			if !strings.Contains(be.url, "https://") {
				t.Fatalf("%s: not https", be.url)
			}
			refused := []struct{ name, ca, want string }{
				{"other CA", cert.OtherCAFile, "certificate signed by unknown authority"},
				{"system roots", "", "certificate signed by unknown authority"},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					o := be.opts(t)
					o.HTTP.CACertFile = tc.ca
					start := time.Now()
					err := backup.Init(ctx, be.url, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: o})
					if err == nil {
						t.Fatal("init over https with the wrong CA succeeded")
					}
					msg := err.Error()
					loc := strings.TrimSuffix(strings.TrimPrefix(be.url, be.name+":"), "/")
					if !strings.Contains(msg, loc) || !strings.Contains(msg, "x509") || !strings.Contains(msg, tc.want) {
						t.Errorf("error %q: want the repository %s and the x509 reason %q", msg, loc, tc.want)
					}
					t.Logf("%s", msg)
					if strings.Contains(msg, "attempts") || time.Since(start) > 10*time.Second {
						t.Errorf("a certificate that does not verify was retried: %v (%s)", err, time.Since(start))
					}
				})
			}
			t.Run("bad CA file", func(t *testing.T) {
				dir := t.TempDir()
				fifo := filepath.Join(dir, "fifo")
				if err := syscall.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
				for _, ca := range []string{fifo, filepath.Join(dir, "missing"), cert.KeyFile} {
					o := be.opts(t)
					o.HTTP.CACertFile = ca
					err := backup.Init(ctx, be.url, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF(), Backend: o})
					if err == nil || !strings.Contains(err.Error(), ca) {
						t.Errorf("CA file %s: %v, want an error naming it", ca, err)
					}
				}
			})
			t.Run("right CA", func(t *testing.T) {
				o := be.opts(t)
				o.HTTP.CACertFile = cert.CAFile
				roundTrip(ctx, t, be.url, o)
			})
		})
	}
}
