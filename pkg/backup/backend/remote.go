package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
)

// HTTPOptions configures what the backends that talk HTTP (S3, REST,
// rclone) share: deadlines, retries and bandwidth limits. Zero values
// pick the defaults named beside each field.
type HTTPOptions struct {
	// Timeout bounds connecting (TCP connect and TLS handshake); default
	// DefaultConnectTimeout (30 s).
	Timeout time.Duration
	// OpTimeout bounds each wait for the server during a request: an
	// attempt that has sent nothing and received nothing for this long
	// fails with ErrTimeout (and is retried). A long transfer is fine as
	// long as bytes move. Default DefaultOpTimeout (60 s).
	OpTimeout time.Duration
	// Retries is how many times a request is tried again after it failed
	// with a 5xx or 429 status, a timeout or a dropped or refused
	// connection; default DefaultRetries (5); negative: never.
	Retries int
	// Backoff is the wait between attempts (service.Backoff: doubling
	// from Min to Max, shortened by up to Jitter); default 500 ms doubling
	// up to 10 s, jitter 0.5: five retries wait about 15 s in all.
	Backoff service.Backoff
	// LimitUpload and LimitDownload cap the transfer rate in bytes per
	// second over all requests of the backend; 0: no limit.
	LimitUpload, LimitDownload int64
	// Dial, when set, opens the connections instead of a net.Dialer with
	// Timeout (tests send virtual-host names to a loopback server).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// CACertFile is a PEM file of the certificate authorities trusted
	// for https (restic's --cacert): a server on a private CA. Given,
	// only its certificates are trusted, not the system's; empty: the
	// system's roots. Read once when the backend is opened, at most
	// MaxCACertFile bytes, through internal/safefile. Certificates are
	// always verified, and TLS is 1.2 or later.
	CACertFile string
}

// MaxCACertFile bounds HTTPOptions.CACertFile.
const MaxCACertFile = 1 << 20

// DefaultRetries is HTTPOptions.Retries when it is zero.
const DefaultRetries = 5

func (o HTTPOptions) withDefaults() HTTPOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultConnectTimeout
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff.Min <= 0 {
		o.Backoff.Min = 500 * time.Millisecond
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 10 * time.Second
	}
	if o.Backoff.Jitter == 0 {
		o.Backoff.Jitter = 0.5
	}
	return o
}

// errorBodyLimit caps what is read of an error response's body; listBody
// caps a listing response.
const (
	errorBodyLimit = 64 << 10
	listBodyLimit  = 64 << 20
)

// resolveSecret returns the value of ref, or "" when ref is unset.
func resolveSecret(ctx context.Context, r *secrets.Resolver, ref secrets.Ref) (string, error) {
	if ref.IsZero() {
		return "", nil
	}
	if r == nil {
		r = secrets.NewResolver("", "")
	}
	v, err := r.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(v), "\r\n"), nil
}

// tlsConfig returns the TLS settings of the https backends: TLS 1.2 or
// later, verified against o.CACertFile's authorities when given.
func tlsConfig(o HTTPOptions) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACertFile == "" {
		return c, nil
	}
	pem, err := safefile.Read(o.CACertFile, MaxCACertFile)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificate in it", o.CACertFile)
	}
	c.RootCAs = pool
	return c, nil
}

// newTransport returns the HTTP transport of a backend: connect deadline,
// a pool of keep-alive connections, HTTP/2 where the server offers it,
// TLS as tlsConfig says.
func newTransport(o HTTPOptions) (*http.Transport, error) {
	tc, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	dial := d.DialContext
	if o.Dial != nil {
		dial = o.Dial
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   o.Timeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}, nil
}

// errIdle is the cause of a request cancelled by its idle watchdog.
var errIdle = errors.New("idle")

// watchClient runs each request under a watchdog that cancels it when
// nothing was sent or received for idle (the transport's own deadlines
// do not cover a server that stops in the middle of a body), caps the
// bodies of error responses, and applies the bandwidth limits.
type watchClient struct {
	rt       http.RoundTripper
	idle     time.Duration
	up, down *rate.Limiter
}

func newWatchClient(rt http.RoundTripper, o HTTPOptions) *watchClient {
	c := &watchClient{rt: rt, idle: o.OpTimeout}
	if o.LimitUpload > 0 {
		c.up = rate.NewLimiter(rate.Limit(o.LimitUpload), int(max(o.LimitUpload, 64<<10)))
	}
	if o.LimitDownload > 0 {
		c.down = rate.NewLimiter(rate.Limit(o.LimitDownload), int(max(o.LimitDownload, 64<<10)))
	}
	return c
}

// Do sends req; the response body must be closed.
func (c *watchClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	t := time.AfterFunc(c.idle, func() { cancel(errIdle) })
	kick := func() { t.Reset(c.idle) }
	stop := func() { t.Stop(); cancel(nil) }
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &watchBody{rc: req.Body, ctx: ctx, kick: kick, lim: c.up}
		if gb := req.GetBody; gb != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				b, err := gb()
				if err != nil {
					return nil, err
				}
				return &watchBody{rc: b, ctx: ctx, kick: kick, lim: c.up}, nil
			}
		}
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		idle := context.Cause(ctx) == errIdle
		stop()
		if idle {
			return nil, fmt.Errorf("%s %s: %w: nothing sent or received for %s", req.Method, req.URL.Redacted(), ErrTimeout, c.idle)
		}
		return nil, err
	}
	kick()
	var body io.ReadCloser = resp.Body
	if resp.StatusCode >= 300 {
		body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, errorBodyLimit), resp.Body}
	}
	resp.Body = &watchBody{rc: body, ctx: ctx, kick: kick, stop: stop, lim: c.down, timeout: c.idle}
	return resp, nil
}

// RoundTrip makes a watchClient an http.RoundTripper too.
func (c *watchClient) RoundTrip(req *http.Request) (*http.Response, error) { return c.Do(req) }

// watchBody is a request or response body that keeps its request's
// watchdog from firing while bytes move, and waits for the rate limit.
type watchBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	kick    func()
	stop    func() // response bodies: the request is over at Close
	lim     *rate.Limiter
	timeout time.Duration
}

func (b *watchBody) Read(p []byte) (int, error) {
	if b.lim != nil && len(p) > b.lim.Burst() {
		p = p[:b.lim.Burst()]
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.kick()
		if b.lim != nil {
			if werr := b.lim.WaitN(b.ctx, n); werr != nil && err == nil {
				err = werr
			}
			b.kick() // the wait is ours, not the server's
		}
	}
	if err != nil && err != io.EOF && context.Cause(b.ctx) == errIdle {
		err = fmt.Errorf("%w: nothing received for %s", ErrTimeout, b.timeout)
	}
	return n, err
}

func (b *watchBody) Close() error {
	err := b.rc.Close()
	if b.stop != nil {
		b.stop()
	}
	return err
}

// StatusError is an HTTP error status from a storage server.
type StatusError struct {
	Code    int
	Message string // the server's words, cut short
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
	}
	return fmt.Sprintf("server answered %d %s", e.Code, http.StatusText(e.Code))
}

// temporaryStatus reports statuses worth retrying: server errors,
// throttling and request timeouts.
func temporaryStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// statusCoder is implemented by the S3 SDK's response errors.
type statusCoder interface{ HTTPStatusCode() int }

// retryable reports errors that another attempt may not have: timeouts,
// dropped, reset or refused connections, 5xx and 429 answers.
func retryable(err error) bool {
	if err == nil || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotExist) || tlsFailure(err) {
		return false
	}
	if errors.Is(err, ErrTimeout) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return temporaryStatus(se.Code)
	}
	var sc statusCoder
	if errors.As(err, &sc) && sc.HTTPStatusCode() > 0 {
		return temporaryStatus(sc.HTTPStatusCode())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's; watchdog timeouts are ErrTimeout
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// Transports word some dropped connections only in text (HTTP/2
	// GOAWAY, a connection lost while the server was writing).
	s := err.Error()
	for _, w := range []string{"connection reset", "broken pipe", "connection refused", "server closed", "GOAWAY", "http2: client connection lost", "EOF"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// tlsFailure reports errors of TLS that another attempt would meet again:
// a certificate that does not verify, a server that does not speak TLS.
func tlsFailure(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &rh)
}

// permanent marks an error not to retry whatever it wraps.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry runs fn until it succeeds, fails with an error retryable does
// not accept, ctx ends, or o.Retries retries are spent; the wait between
// attempts is o.Backoff. The error of the last attempt is returned, with
// the number of attempts when there were several.
func retry(ctx context.Context, o HTTPOptions, fn func(ctx context.Context) error) error {
	b := o.Backoff
	start := time.Now()
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= o.Retries {
			if attempt > 0 {
				err = fmt.Errorf("%w (%d attempts in %s)", err, attempt+1, time.Since(start).Round(time.Millisecond))
			}
			return err
		}
		if werr := b.Wait(ctx); werr != nil {
			return err
		}
	}
}

// checkRange checks the Content-Range of a ranged answer ("bytes
// START-END/TOTAL") against the offset asked for: a server that ignored
// the range, or answered another one, would hand over the wrong bytes.
// A 200 answer carries the whole file, right only from offset 0. It
// returns TOTAL, or -1 when the server did not say.
func checkRange(status int, contentRange string, offset int64) (int64, error) {
	if status == http.StatusOK {
		if offset != 0 {
			return -1, fmt.Errorf("server ignored the range starting at %d", offset)
		}
		return -1, nil
	}
	var start, end, total int64
	if n, _ := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &start, &end, &total); n < 2 {
		return -1, fmt.Errorf("server answered range %q, asked from %d", contentRange, offset)
	}
	if start != offset || end < start {
		return -1, fmt.Errorf("server answered range %q, asked from %d", contentRange, offset)
	}
	if total == 0 {
		total = -1 // "*" or absent
	}
	return total, nil
}

// readBody reads exactly len(buf) bytes of r into buf.
func readBody(r io.Reader, buf []byte) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// ranged is what a remote backend's ranged GET answered: the body, the
// HTTP status (206, or 200 for the whole file) and the Content-Range.
type ranged struct {
	body         io.ReadCloser
	status       int
	contentRange string
	// length is the body's announced length (Content-Length); -1 when
	// the server did not say.
	length int64
}

// remoteLoad is Load of a remote backend on its Stat and LoadInto: it
// reads length bytes of h at offset (length 0: to the end, within
// FileLimit).
func remoteLoad(ctx context.Context, b interface {
	Backend
	BufferLoader
}, h Handle, offset int64, length int) ([]byte, error) {
	if length <= 0 {
		size, err := b.Stat(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", h, err)
		}
		if length, err = wholeLength(h, offset, size); err != nil {
			return nil, err
		}
		if length == 0 {
			return []byte{}, nil
		}
	}
	buf := make([]byte, length)
	if err := b.LoadInto(ctx, h, offset, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// remoteLoadInto reads len(buf) bytes of h at offset into buf with get
// (one ranged GET of rng, "bytes=START-END"), retried as o says,
// checking that the server answered the range asked for.
func remoteLoadInto(ctx context.Context, o HTTPOptions, h Handle, offset int64, buf []byte, get func(ctx context.Context, rng string) (ranged, error)) error {
	if len(buf) == 0 {
		return nil
	}
	rng := fmt.Sprintf("bytes=%d-%d", offset, offset+int64(len(buf))-1)
	err := retry(ctx, o, func(ctx context.Context) error {
		r, err := get(ctx, rng)
		if err != nil {
			return err
		}
		defer r.body.Close()
		if _, err := checkRange(r.status, r.contentRange, offset); err != nil {
			return permanent{err}
		}
		return readBody(r.body, buf)
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", h, err)
	}
	return nil
}

// remoteOpenRange starts reading length bytes of h at offset with get
// (one ranged GET), retried as o says until the server answers with the
// range asked for, and returns the body as a rangeBody: exactly length
// bytes, then io.EOF. A body announced shorter than the range, or (206)
// longer, is refused before anything is read.
func remoteOpenRange(ctx context.Context, o HTTPOptions, h Handle, offset, length int64, get func(ctx context.Context, rng string) (ranged, error)) (io.ReadCloser, error) {
	if offset < 0 || length <= 0 {
		return nil, fmt.Errorf("load %s: bad range %d+%d", h, offset, length)
	}
	rng := fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	var body io.ReadCloser
	err := retry(ctx, o, func(ctx context.Context) error {
		r, err := get(ctx, rng)
		if err != nil {
			return err
		}
		if _, err := checkRange(r.status, r.contentRange, offset); err != nil {
			r.body.Close()
			return permanent{err}
		}
		if err := checkLength(r, length); err != nil {
			r.body.Close()
			return permanent{err}
		}
		body = r.body
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	return &rangeBody{rc: body, left: length, h: h}, nil
}

// checkLength checks the announced length of an answer to a ranged GET
// of length bytes: a 206 must carry exactly the range, a 200 (the whole
// file, from offset 0) at least as much.
func checkLength(r ranged, length int64) error {
	switch {
	case r.length < 0:
		return nil
	case r.length < length:
		return fmt.Errorf("server announced %d bytes, asked for %d", r.length, length)
	case r.length > length && r.status != http.StatusOK:
		return fmt.Errorf("server announced %d bytes, more than the %d asked for", r.length, length)
	}
	return nil
}

// rangeBody yields the first left bytes of a ranged answer, then io.EOF
// (a 200 answer's further bytes are never read); a body that ends
// before is io.ErrUnexpectedEOF.
type rangeBody struct {
	rc   io.ReadCloser
	left int64
	h    Handle
}

func (b *rangeBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	switch {
	case b.left <= 0:
		return n, nil
	case err == io.EOF:
		return n, fmt.Errorf("load %s: body ended %d bytes short: %w", b.h, b.left, io.ErrUnexpectedEOF)
	case err != nil:
		return n, fmt.Errorf("load %s: %w", b.h, err)
	}
	return n, nil
}

func (b *rangeBody) Close() error { return b.rc.Close() }

// remoteLoadWhole reads all of h with get (one GET returning the body
// and its size, -1 when unknown), retried as o says, refusing a file
// over limit before reading it.
func remoteLoadWhole(ctx context.Context, o HTTPOptions, h Handle, limit int64, get func(ctx context.Context) (io.ReadCloser, int64, error)) ([]byte, error) {
	var b []byte
	err := retry(ctx, o, func(ctx context.Context) error {
		body, size, err := get(ctx)
		if err != nil {
			return err
		}
		defer body.Close()
		b, err = readWhole(h, body, size, limit)
		if errors.Is(err, ErrTooLarge) {
			return permanent{err}
		}
		return err
	})
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	return b, nil
}
