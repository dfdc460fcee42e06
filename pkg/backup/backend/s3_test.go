package backend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// s3Opts returns backend options with the cluster's keys in secret
// files (never in the URL), and short deadlines and backoff for tests.
func s3Opts(t *testing.T, s *testenv.SeaweedFS) backend.Options {
	t.Helper()
	dir := t.TempDir()
	ak, sk := filepath.Join(dir, "access"), filepath.Join(dir, "secret")
	if err := os.WriteFile(ak, []byte(s.AccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sk, []byte(s.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return backend.Options{
		S3:   backend.S3Options{AccessKey: secrets.Ref("file:" + ak), SecretKey: secrets.Ref("file:" + sk)},
		HTTP: backend.HTTPOptions{OpTimeout: 10 * time.Second, Backoff: service.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}},
	}
}

func openS3(t *testing.T, repoURL string, opts backend.Options) *backend.S3 {
	t.Helper()
	be, err := backend.OpenS3(context.Background(), repoURL, opts.S3, opts.HTTP, opts.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func s3Plant(t *testing.T, be *backend.S3) plantFunc {
	return func(rel string, data []byte) {
		t.Helper()
		if err := backend.S3PutRaw(context.Background(), be, rel, data); err != nil {
			t.Fatal(err)
		}
	}
}

// The S3 backend behaves as the local and SFTP ones do, path style and
// virtual-host style, at the bucket's root and under a prefix.
func TestS3(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	opts := s3Opts(t, s)
	t.Run("path", func(t *testing.T) {
		be := openS3(t, "s3:"+s.Endpoint+"/path-style/some/prefix", opts)
		exercise(t, be, s3Plant(t, be))
	})
	t.Run("root", func(t *testing.T) {
		be := openS3(t, "s3:"+s.Endpoint+"/bucket-root", opts)
		exercise(t, be, s3Plant(t, be))
	})
	t.Run("virtual-host", func(t *testing.T) {
		// BUCKET.localhost does not resolve here: dial the cluster for
		// any name, and check that the bucket went into the host name.
		var hosts atomic.Int32
		o := opts
		o.S3.BucketLookup = "dns"
		o.HTTP.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "vhost.localhost:") {
				hosts.Add(1)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, s.S3Addr)
		}
		_, port, _ := net.SplitHostPort(s.S3Addr)
		be := openS3(t, "s3:http://localhost:"+port+"/vhost/prefix", o)
		exercise(t, be, s3Plant(t, be))
		if hosts.Load() == 0 {
			t.Fatal("no connection was made to BUCKET.localhost")
		}
	})
}

// A file larger than the part size is uploaded in parts, several at a
// time, and reads back whole and in ranges.
func TestS3Multipart(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	opts := s3Opts(t, s)
	opts.S3.PartSize = 5 << 20
	opts.S3.MultipartThreshold = 5 << 20
	be := openS3(t, "s3:"+s.Endpoint+"/multipart", opts)
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 17<<20+123)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	h := backend.Handle{Type: backend.Pack, Name: strings.Repeat("9a", 32)}
	before := s.S3Requests(t)
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	after := s.S3Requests(t)
	t.Logf("requests for one 17 MiB file: before %v after %v", before, after)
	got, err := backend.LoadFile(ctx, be, h, backend.PackLimit)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load multipart file: %d bytes, %v", len(got), err)
	}
	part, err := be.Load(ctx, h, 5<<20-10, 20)
	if err != nil || !bytes.Equal(part, data[5<<20-10:5<<20+10]) {
		t.Fatalf("load across a part boundary: %v", err)
	}
	// An upload a killed backup left unfinished is a temporary file:
	// listed, and removed by aborting it.
	if err := backend.S3StartUpload(ctx, be, "data/ab/"+strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	var temps []string
	if err := be.ListTemp(ctx, func(f backend.TempFile) error { temps = append(temps, f.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(temps) != 1 || !strings.HasPrefix(temps[0], "data/ab/.tmp-upload-") {
		t.Fatalf("unfinished uploads listed as %v", temps)
	}
	if err := be.RemoveTemp(ctx, temps[0]); err != nil {
		t.Fatal(err)
	}
	temps = nil
	if err := be.ListTemp(ctx, func(f backend.TempFile) error { temps = append(temps, f.Path); return nil }); err != nil || len(temps) != 0 {
		t.Fatalf("unfinished uploads after abort: %v %v", temps, err)
	}
}

// Credentials come only from secret references: a URL holding them is
// refused, a missing reference is named (its value never is), and a
// wrong key fails at once with the server's answer, without retries.
func TestS3Credentials(t *testing.T) {
	ctx := context.Background()
	if _, err := backend.Open(ctx, "s3:http://AKID:SECRET@127.0.0.1:1/b", backend.Options{}); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("url with credentials: %v", err)
	}
	t.Setenv("HOSTD_TEST_NO_SUCH_VAR", "")
	_, err := backend.Open(ctx, "s3:http://127.0.0.1:1/b", backend.Options{S3: backend.S3Options{AccessKey: "env:HOSTD_TEST_NO_SUCH_VAR", SecretKey: "env:HOSTD_TEST_NO_SUCH_VAR"}})
	if err == nil || !strings.Contains(err.Error(), "env:HOSTD_TEST_NO_SUCH_VAR") {
		t.Fatalf("missing credential: %v", err)
	}
	s := testenv.StartSeaweedFS(t)
	opts := s3Opts(t, s)
	t.Setenv("HOSTD_TEST_WRONG_SECRET", "wrong-secret-value")
	opts.S3.SecretKey = "env:HOSTD_TEST_WRONG_SECRET"
	be := openS3(t, "s3:"+s.Endpoint+"/creds", opts)
	start := time.Now()
	err = be.Create(ctx)
	if err == nil || strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), "attempts") {
		t.Fatalf("create with a wrong secret key: %v", err)
	}
	t.Logf("wrong key: %v (%s)", err, time.Since(start))
}

// faultProxy stands between a backend and a real server: it answers
// 503 to the first fail503 requests, or holds every request without an
// answer while hang is set.
type faultProxy struct {
	URL      string
	fail503  atomic.Int32
	hang     atomic.Bool
	requests atomic.Int32
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	fp := &faultProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp.requests.Add(1)
		if fp.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		if fp.fail503.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down, overloaded", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(stop); srv.Close() })
	fp.URL = "http://" + ln.Addr().String()
	return fp
}

// A server that answers 503 for a while is retried with backoff; one
// that keeps answering 503 fails with a clear error naming the status
// and the attempts; one that stops answering fails with ErrTimeout
// within the operation deadline times the attempts, never hangs.
func TestS3Faults(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	fp := startFaultProxy(t, s.Endpoint)
	opts := s3Opts(t, s)
	opts.HTTP.Retries = 3
	opts.HTTP.OpTimeout = time.Second
	be := openS3(t, "s3:"+fp.URL+"/faults", opts)
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.Snapshot, Name: strings.Repeat("5e", 32)}
	// The first write to a bucket makes the cluster grow its volumes,
	// which can take longer than the deadline on a loaded machine.
	warm := backend.Handle{Type: backend.Lock, Name: strings.Repeat("10", 32)}
	testenv.WaitFor(t, 30*time.Second, func() error { return be.Save(ctx, warm, []byte("warm-up")) })
	fp.fail503.Store(2)
	if err := be.Save(ctx, h, []byte("survives two 503s")); err != nil {
		t.Fatalf("save through two 503 answers: %v", err)
	}
	if got, err := be.Load(ctx, h, 0, 0); err != nil || string(got) != "survives two 503s" {
		t.Fatalf("load: %q %v", got, err)
	}
	fp.fail503.Store(1000)
	n0 := fp.requests.Load()
	_, err := be.Load(ctx, h, 0, 0)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "4 attempts") {
		t.Fatalf("load from a server that keeps answering 503: %v", err)
	}
	if n := fp.requests.Load() - n0; n != 4 {
		t.Fatalf("%d requests for 1 try and 3 retries", n)
	}
	t.Logf("always 503: %v", err)
	fp.fail503.Store(0)
	fp.hang.Store(true)
	start := time.Now()
	_, err = be.Stat(ctx, h)
	if !errors.Is(err, backend.ErrTimeout) {
		t.Fatalf("stat on a server that does not answer: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 4*opts.HTTP.OpTimeout+3*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	t.Logf("silent server: %v", err)
	fp.hang.Store(false)
	if _, err := be.Stat(ctx, h); err != nil {
		t.Fatalf("stat once the server answers again: %v", err)
	}
}

// Whole-file reads of an object larger than its type's cap are refused
// before anything is read, and a missing file is ErrNotExist.
func TestS3Hostile(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	be := openS3(t, "s3:"+s.Endpoint+"/hostile", s3Opts(t, s))
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	key := backend.Handle{Type: backend.Key, Name: strings.Repeat("01", 32)}
	s3Plant(t, be)("keys/"+key.Name, make([]byte, backend.KeyLimit+1))
	if _, err := backend.LoadFile(ctx, be, key, 1<<40); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("LoadFile of an oversized key: %v", err)
	}
	if _, err := be.Load(ctx, key, 0, 0); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("Load of an oversized key: %v", err)
	}
	if _, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Lock, Name: "00"}, 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile of a missing file: %v", err)
	}
}

// OpenRange streams exactly the range asked for; a range the object
// does not hold in full (the server answers fewer bytes) is refused
// before anything is read, as is a bad range.
func TestS3OpenRange(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	be := openS3(t, "s3:"+s.Endpoint+"/ranges", s3Opts(t, s))
	ctx := context.Background()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	h := backend.Handle{Type: backend.Pack, Name: strings.Repeat("ab", 32)}
	if err := be.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	rc, err := be.OpenRange(ctx, h, 100, 200)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[100:300]) {
		t.Fatalf("range 100+200: %d bytes, %v", len(got), err)
	}
	for _, r := range [][2]int64{{900, 200}, {-1, 10}, {0, 0}} {
		if rc, err := be.OpenRange(ctx, h, r[0], r[1]); err == nil {
			rc.Close()
			t.Errorf("range %d+%d of a %d-byte object opened", r[0], r[1], len(data))
		} else {
			t.Logf("range %d+%d: %v", r[0], r[1], err)
		}
	}
}
