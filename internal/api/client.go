package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning is returned when no daemon listens on the socket.
var ErrNotRunning = errors.New("hostd is not running")

// Deadlines of the client's calls.
const (
	// DefaultTimeout bounds a whole call (Get, Post, Raw) unless the
	// client was made WithTimeout or ctx ends sooner; for Stream it bounds
	// the wait for the reply to start.
	DefaultTimeout = time.Minute
	// DialTimeout bounds connecting to the socket.
	DialTimeout = 5 * time.Second
	// MaxReply caps the size of a reply the client reads.
	MaxReply = 64 << 20
)

// Client talks to the daemon over its unix socket. Every call has a
// deadline: DefaultTimeout, or the one given WithTimeout.
type Client struct {
	// Socket is the socket's path.
	Socket  string
	timeout time.Duration
	http    *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{
		Socket:  path,
		timeout: DefaultTimeout,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				d := net.Dialer{Timeout: DialTimeout}
				return d.DialContext(ctx, "unix", path)
			},
		}},
	}
}

// WithTimeout returns a copy of c whose calls are bounded by d instead of
// DefaultTimeout. d = 0 leaves a call bounded only by its context, for
// operations the daemon bounds itself (a prune, bounded by
// containers.prune_timeout).
func (c *Client) WithTimeout(d time.Duration) *Client {
	cp := *c
	cp.timeout = d
	return &cp
}

// deadline applies the client's timeout to ctx.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// NotRunningError says the daemon is not reachable and why.
type NotRunningError struct {
	Socket string
	Reason string
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("hostd is not running: %s at %s", e.Reason, e.Socket)
}

func (e *NotRunningError) Unwrap() error { return ErrNotRunning }

// Do sends a request and returns the raw response of a 2xx reply; every
// other reply becomes an *HTTPError carrying the daemon's message. Only
// ctx bounds it (and DialTimeout the connect): callers that read the body
// set their own deadline.
func (c *Client) Do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hostd"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT):
			return nil, &NotRunningError{Socket: c.Socket, Reason: "no socket"}
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, &NotRunningError{Socket: c.Socket, Reason: "nothing listening on the socket"}
		case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
			return nil, fmt.Errorf("permission denied on %s: run as root or join the socket's group", c.Socket)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: no reply from hostd within the deadline: %w", method, path, err)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e Error
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = resp.Status
		}
		return nil, &HTTPError{Code: resp.StatusCode, Msg: msg, Body: b}
	}
	return resp, nil
}

// HTTPError is a reply from the daemon whose status is not 2xx. Every
// client call returns one for such a reply, never a decoded result, so a
// refused request (403) can never read as a success.
type HTTPError struct {
	// Code is the HTTP status.
	Code int
	// Msg is the daemon's message (the "error" field of its JSON reply).
	Msg string
	// Body is the reply as sent (at most 1 MiB).
	Body []byte
}

func (e *HTTPError) Error() string {
	switch e.Code {
	case http.StatusForbidden:
		return "refused by hostd: " + e.Msg
	}
	return e.Msg
}

// Get fetches path and decodes the JSON reply into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, out)
}

// Post sends in as JSON and decodes the JSON reply into out (if not nil).
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.call(ctx, http.MethodPost, path, in, out)
}

// Raw fetches path and returns the reply body as sent.
func (c *Client) Raw(ctx context.Context, method, path string, in any) ([]byte, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxReply+1))
	if err != nil {
		return nil, fmt.Errorf("read reply of %s %s: %w", method, path, err)
	}
	if len(b) > MaxReply {
		return nil, fmt.Errorf("reply of %s %s is larger than %d MiB", method, path, MaxReply>>20)
	}
	return b, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	b, err := c.Raw(ctx, method, path, in)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode reply of %s %s: %w", method, path, err)
	}
	return nil
}

// Stream sends a request whose reply is a stream of JSON lines and calls fn
// with each line until the stream ends or fn returns an error. The reply
// must start within the client's timeout; the stream itself runs as long
// as the operation does (a backup job, bounded by the daemon) or until ctx
// ends.
func (c *Client) Stream(ctx context.Context, method, path string, in any, fn func(line json.RawMessage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timer *time.Timer
	if c.timeout > 0 {
		timer = time.AfterFunc(c.timeout, cancel)
	}
	resp, err := c.Do(ctx, method, path, in)
	if timer != nil && !timer.Stop() && err == nil {
		resp.Body.Close()
		return fmt.Errorf("%s %s: no reply from hostd within %s", method, path, c.timeout)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(append(json.RawMessage(nil), line...)); err != nil {
			return err
		}
	}
	return sc.Err()
}
