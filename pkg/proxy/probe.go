package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	xnet "github.com/xtls/xray-core/common/net"
	"github.com/xtls/xray-core/common/session"
	"github.com/xtls/xray-core/core"
	"github.com/xtls/xray-core/transport/internet/reality"
)

// prober sends the health request through the xray instance's proxy
// outbound and, when it fails, finds out why.
type prober struct {
	inst    *core.Instance
	set     settings
	url     string
	timeout time.Duration
}

func (p *prober) client() *http.Client {
	return &http.Client{
		Timeout: p.timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dest, err := xnet.ParseDestination("tcp:" + addr)
				if err != nil {
					return nil, err
				}
				// The probe pseudo-inbound is routed to the proxy outbound.
				ctx = session.ContextWithInbound(context.WithoutCancel(ctx), &session.Inbound{Tag: tagProbe})
				return core.Dial(ctx, p.inst, dest)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probe sends HEAD health_url through the server.
func (p *prober) probe(ctx context.Context) ProbeResult {
	r := ProbeResult{URL: p.url}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.url, nil)
	if err != nil {
		r.Error = fmt.Sprintf("build request: %v", err)
		return r
	}
	start := time.Now()
	resp, err := p.client().Do(req)
	elapsed := time.Since(start)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.Status = resp.StatusCode
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			r.OK = true
			r.LatencyMS = float64(elapsed) / float64(time.Millisecond)
			return r
		}
		r.Error = fmt.Sprintf("health check %s answered %s", p.url, resp.Status)
		return r
	}
	r.Error = p.diagnose(ctx, err).Error()
	return r
}

// Reasons a probe fails, as errors callers can test with errors.Is.
var (
	ErrRefused     = errors.New("connection refused")
	ErrTimeout     = errors.New("timeout")
	ErrRealityAuth = errors.New("REALITY authentication failed")
)

// diagnose explains a failed probe. A request through xray fails the same
// way whatever went wrong (the connection closes), so the server is
// contacted directly: a TCP connect tells refused and timeout apart, and a
// REALITY handshake tells whether the server accepts the public key and
// short id.
func (p *prober) diagnose(ctx context.Context, probeErr error) error {
	srv := p.set.Server
	addr := srv.hostPort()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("server %s: %w", addr, ErrRefused)
	case isTimeout(err):
		return fmt.Errorf("server %s: connect: %w after %s", addr, ErrTimeout, p.timeout)
	case err != nil:
		return fmt.Errorf("server %s: connect: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(p.timeout))
	shortID := make([]byte, 8)
	copy(shortID, srv.ShortID)
	// Zero spider parameters: the check never crawls the target, and an
	// unauthenticated handshake returns at once.
	y := make([]int64, 10)
	rc := &reality.Config{
		Fingerprint: srv.Fingerprint,
		ServerName:  srv.ServerName,
		PublicKey:   srv.PublicKey,
		ShortId:     shortID,
		SpiderX:     "/",
		SpiderY:     y,
	}
	dest := xnet.TCPDestination(xnet.ParseAddress(srv.Address), xnet.Port(srv.Port))
	tc, err := reality.UClient(conn, rc, dctx, dest)
	switch {
	case isRealityRejection(err):
		return fmt.Errorf("server %s: %w: the server passed the handshake on to its target (check public_key and short_id)", addr, ErrRealityAuth)
	case isTimeout(err):
		return fmt.Errorf("server %s: REALITY handshake: %w after %s", addr, ErrTimeout, p.timeout)
	case err != nil:
		return fmt.Errorf("server %s: REALITY handshake: %v", addr, err)
	}
	tc.Close()
	if isTimeout(probeErr) {
		return fmt.Errorf("health check %s through %s: %w after %s", p.url, addr, ErrTimeout, p.timeout)
	}
	return fmt.Errorf("health check %s through %s failed after a good REALITY handshake (wrong user_id, or the URL is unreachable from the server): %v", p.url, addr, unwrapURLError(probeErr))
}

// isRealityRejection reports whether a REALITY handshake was answered by
// the server's target instead of the server: the client then sees the
// target's real certificate. If that certificate is valid for server_name,
// xray reports "processed invalid connection"; if it is not (a private
// target, a wrong server_name), certificate verification fails.
func isRealityRejection(err error) bool {
	if err == nil {
		return false
	}
	var (
		he x509.HostnameError
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
	)
	return strings.Contains(err.Error(), "processed invalid connection") ||
		errors.As(err, &he) || errors.As(err, &ua) || errors.As(err, &ci) ||
		strings.Contains(err.Error(), "x509: ")
}

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// unwrapURLError drops net/http's `Head "URL": ` prefix.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
