package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// WeedVersion is the SeaweedFS module version the S3 tests run. The
// project tags its releases without the "v" Go wants, so the module
// proxy knows it by pseudo-version only.
const WeedVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// weedModule is SeaweedFS's Go module.
const weedModule = "github.com/seaweedfs/seaweedfs"

// weed is built once per test binary.
var weed goTool

// Weed returns the path of SeaweedFS's weed binary, built from its Go
// module into the user cache directory
// (os.UserCacheDir()/hostd-test/weed-VERSION/weed) the first time and
// reused afterwards. `go install` refuses the module (its go.mod has
// replace directives), so the module is downloaded, copied to a writable
// temporary directory and built there; the binary is built under a
// temporary name and renamed when complete, so an interrupted build
// leaves no binary behind. The build takes minutes on two cores.
func Weed(t testing.TB) string {
	t.Helper()
	return weed.get(t, "weed "+WeedVersion+" (built from "+weedModule+")", "weed-"+WeedVersion, "weed", func(goBin, dir, bin string) error {
		return buildWeed(t, goBin, dir, bin)
	})
}

// buildWeed builds weed into bin, in the cache directory dir.
func buildWeed(t testing.TB, goBin, dir, bin string) error {
	start := time.Now()
	dl := exec.Command(goBin, "mod", "download", "-json", weedModule+"@"+WeedVersion)
	dl.Dir = os.TempDir()
	dl.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := dl.Output()
	var mod struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: %v %v %s", weedModule, WeedVersion, err, jerr, mod.Error)
	}
	src, err := os.MkdirTemp("", "hostd-weed-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	// The module cache is read-only: the copy is writable, so the build
	// may write go.sum entries.
	if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
		return fmt.Errorf("copy %s: %w", mod.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".weed-"+randHex(8))
	defer os.Remove(tmp)
	build := exec.Command(goBin, "build", "-o", tmp, "./weed")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./weed: %v: %s", err, tail(out, 4096))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return err
	}
	t.Logf("built weed %s in %s", WeedVersion, time.Since(start).Round(time.Second))
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SeaweedFS is a real SeaweedFS cluster in one process (`weed server
// -s3`: master, volume server, filer and S3 gateway) on loopback ports,
// with one identity allowed everything.
type SeaweedFS struct {
	Endpoint    string // http://127.0.0.1:PORT of the S3 gateway
	S3Addr      string // 127.0.0.1:PORT
	MetricsAddr string // 127.0.0.1:PORT, Prometheus metrics
	AccessKey   string
	SecretKey   string
	Dir         string // data and config
	Domain      string // s3.domainName: virtual-host style as BUCKET.Domain
	// TLS is the certificate the gateway serves (StartSeaweedFSWith
	// with TLS); Endpoint is then https://.
	TLS *TLSCert

	bin  string
	args []string
	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// KeyFiles writes the access and secret key to files in a test's
// temporary directory (mode 0600) and returns their paths, for the
// file: secret references the S3 backend takes.
func (s *SeaweedFS) KeyFiles(t testing.TB) (accessFile, secretFile string) {
	t.Helper()
	dir := t.TempDir()
	accessFile, secretFile = filepath.Join(dir, "access"), filepath.Join(dir, "secret")
	if err := os.WriteFile(accessFile, []byte(s.AccessKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(s.SecretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return accessFile, secretFile
}

// Write collects weed's output.
func (s *SeaweedFS) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log.Len() > 1<<20 {
		s.log.Reset()
	}
	return s.log.Write(p)
}

// Log returns what weed wrote (the last MiB or so).
func (s *SeaweedFS) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// StartSeaweedFS builds weed if needed, starts a cluster with fresh
// data, waits until its S3 gateway answers, and stops it when the test
// ends. Virtual-host style requests work for BUCKET.localhost.
func StartSeaweedFS(t testing.TB) *SeaweedFS {
	t.Helper()
	return StartSeaweedFSWith(t, SeaweedOptions{})
}

// SeaweedOptions change how StartSeaweedFSWith starts the cluster.
type SeaweedOptions struct {
	// TLS, when set, makes the S3 gateway serve https with this
	// certificate (NewTLSCert) instead of http.
	TLS *TLSCert
}

// StartSeaweedFSWith is StartSeaweedFS with options.
func StartSeaweedFSWith(t testing.TB, o SeaweedOptions) *SeaweedFS {
	t.Helper()
	bin := Weed(t)
	dir := TempDir(t)
	s := &SeaweedFS{bin: bin, Dir: dir, AccessKey: "hostd" + randHex(4), SecretKey: randHex(16), Domain: "localhost", TLS: o.TLS}
	cfg := map[string]any{"identities": []any{map[string]any{
		"name":        "hostd",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := func() string { return strconv.Itoa(FreePort(t)) }
		s3Port, metrics := port(), port()
		s.S3Addr = "127.0.0.1:" + s3Port
		s.Endpoint = "http://" + s.S3Addr
		if s.TLS != nil {
			s.Endpoint = "https://" + s.S3Addr
		}
		s.MetricsAddr = "127.0.0.1:" + metrics
		s.args = []string{"server", "-s3", "-filer",
			"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + data,
			"-master.port=" + port(), "-master.port.grpc=" + port(),
			"-volume.port=" + port(), "-volume.port.grpc=" + port(),
			"-filer.port=" + port(), "-filer.port.grpc=" + port(),
			"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
			"-s3.port=" + s3Port, "-s3.port.grpc=" + port(),
			"-s3.port.iceberg=0", "-s3.port.lance=0",
			"-s3.config=" + filepath.Join(dir, "s3.json"), "-s3.domainName=" + s.Domain,
			"-metricsPort=" + metrics, "-metricsIp=127.0.0.1",
			// Small volumes, no preallocation: the data directory stays
			// small. No telemetry: nothing leaves the machine.
			"-master.volumeSizeLimitMB=64", "-volume.max=100", "-master.telemetry=false",
		}
		if s.TLS != nil {
			s.args = append(s.args, "-s3.cert.file="+s.TLS.CertFile, "-s3.key.file="+s.TLS.KeyFile)
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() { s.Kill() })
			return s
		}
		s.Kill()
	}
	t.Fatalf("start seaweedfs: %v", lastErr)
	return nil
}

func (s *SeaweedFS) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := startTied(cmd); err != nil {
		return fmt.Errorf("start weed: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	ctx := context.Background()
	err := Poll(ctx, 90*time.Second, func() error {
		select {
		case <-done:
			return errors.New("weed exited")
		default:
		}
		// An unsigned request is refused (403) once the gateway and the
		// filer behind it are up.
		c := http.Client{Timeout: 2 * time.Second, Transport: s.transport()}
		resp, err := c.Get(s.Endpoint + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("s3 gateway answered %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w; log:\n%s", err, tail([]byte(s.Log()), 8192))
	}
	// The gateway answers before the filer and volume servers behind it
	// can store anything (a bucket created then fails with 404): ready
	// means a bucket can be created and removed.
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}, nil
		}),
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: s.transport()},
	})
	err = Poll(ctx, 90*time.Second, func() error {
		// A fresh name each try: a try that timed out may still have
		// created its bucket.
		probe := "hostd-ready-" + randHex(4)
		select {
		case <-done:
			return errors.New("weed exited")
		default:
		}
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(probe)}); err != nil {
			return fmt.Errorf("create a bucket: %w", err)
		}
		if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(probe)}); err != nil {
			return fmt.Errorf("remove a bucket: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seaweedfs not ready: %w; log:\n%s", err, tail([]byte(s.Log()), 8192))
	}
	return nil
}

// transport returns the transport the harness talks to the gateway
// with: trusting s.TLS's authority when it serves https.
func (s *SeaweedFS) transport() *http.Transport {
	tr := &http.Transport{}
	if s.TLS != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.TLS.pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// TLSCert is a throwaway certificate authority and a server certificate
// it signed for 127.0.0.1 and localhost, as PEM files in a test's
// temporary directory.
type TLSCert struct {
	CAFile   string // the authority's certificate
	CertFile string // the server's certificate
	KeyFile  string // the server's private key
	// OtherCAFile is the certificate of another authority, which did
	// not sign the server's: a client trusting only it must refuse the
	// server.
	OtherCAFile string

	pool *x509.CertPool
}

// NewTLSCert makes a CA and a server certificate (ECDSA P-256, valid
// for a day) for 127.0.0.1 and localhost, and another CA.
func NewTLSCert(t testing.TB) *TLSCert {
	t.Helper()
	dir := t.TempDir()
	c := &TLSCert{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"),
		KeyFile: filepath.Join(dir, "server.key"), OtherCAFile: filepath.Join(dir, "other-ca.pem"), pool: x509.NewCertPool()}
	now := time.Now()
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	ca, caKey, caPEM := newCA("hostd test CA")
	c.pool.AddCert(ca)
	_, _, otherPEM := newCA("hostd test CA (another)")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		c.CAFile: caPEM, c.OtherCAFile: otherPEM,
		c.CertFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		c.KeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Kill ends the cluster at once (SIGKILL to its process group), as a
// crash or power loss would.
func (s *SeaweedFS) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Restart starts the cluster again on the same ports and data after
// Kill.
func (s *SeaweedFS) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		t.Fatalf("restart seaweedfs: %v", err)
	}
}

// S3Requests returns the number of requests the S3 gateway has served
// since it started, by type (PUT, GET, HEAD, LIST...), from its
// Prometheus metrics.
func (s *SeaweedFS) S3Requests(t testing.TB) map[string]float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("seaweedfs metrics: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(http.MaxBytesReader(nil, resp.Body, 16<<20))
	return parseS3Requests(buf.String())
}

// parseS3Requests sums SeaweedFS_s3_request_total by its type label.
func parseS3Requests(metrics string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, "SeaweedFS_s3_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		typ := "?"
		for _, l := range strings.Split(labels, ",") {
			if k, val, ok := strings.Cut(l, "="); ok && k == "type" {
				typ = strings.Trim(val, `"`)
			}
		}
		out[typ] += v
	}
	return out
}
