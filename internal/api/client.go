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
)

// ErrNotRunning is returned when no daemon listens on the socket.
var ErrNotRunning = errors.New("hostd is not running")

// Client talks to the daemon over its unix socket.
type Client struct {
	// Socket is the socket's path.
	Socket string
	http   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{
		Socket: path,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}},
	}
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

// Do sends a request and returns the raw response of a 2xx reply; error
// replies become errors carrying the daemon's message.
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
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &HTTPError{Code: resp.StatusCode, Msg: e.Error, Body: b}
		}
		return nil, &HTTPError{Code: resp.StatusCode, Msg: strings.TrimSpace(string(b)), Body: b}
	}
	return resp, nil
}

// HTTPError is an error reply from the daemon.
type HTTPError struct {
	Code int
	Msg  string
	Body []byte
}

func (e *HTTPError) Error() string { return e.Msg }

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
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode reply of %s %s: %w", method, path, err)
	}
	return nil
}

// Stream sends a request whose reply is a stream of JSON lines and calls fn
// with each line until the stream ends or fn returns an error.
func (c *Client) Stream(ctx context.Context, method, path string, in any, fn func(line json.RawMessage) error) error {
	resp, err := c.Do(ctx, method, path, in)
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
