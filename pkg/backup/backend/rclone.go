package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/hostd/hostd/internal/secrets"
)

// RcloneOptions configures the rclone backend.
type RcloneOptions struct {
	// Program is the rclone executable; default "rclone" from $PATH.
	Program string
	// Args are added to rclone's command line before the remote (for
	// example --config FILE, or rclone's own --bwlimit).
	Args []string
	// Env sets environment variables of the rclone process from secret
	// references: RCLONE_CONFIG_PASS, or a remote's keys as
	// RCLONE_CONFIG_<REMOTE>_<OPTION> (rclone's own convention).
	Env map[string]secrets.Ref
	// StopTimeout is how long rclone may take to exit once its input is
	// closed before it is killed; default 5 s.
	StopTimeout time.Duration
}

// ParseRclone returns the rclone remote of rclone:REMOTE:PATH.
func ParseRclone(repoURL string) (string, error) {
	remote, ok := strings.CutPrefix(repoURL, "rclone:")
	if !ok || remote == "" {
		return "", fmt.Errorf("repository url %q: want rclone:REMOTE:PATH", repoURL)
	}
	if strings.HasPrefix(remote, "-") {
		return "", fmt.Errorf("repository url %q: a remote cannot start with -", repoURL)
	}
	return remote, nil
}

// OpenRclone starts `rclone serve restic --stdio REMOTE:PATH` and returns
// a REST backend that speaks HTTP/2 to it over its standard input and
// output. Should rclone exit, the next request starts it again. Open
// waits for rclone's first answer, so a wrong remote fails here with
// rclone's words.
func OpenRclone(ctx context.Context, repoURL string, opts RcloneOptions, hopts HTTPOptions, res *secrets.Resolver) (*REST, error) {
	remote, err := ParseRclone(repoURL)
	if err != nil {
		return nil, err
	}
	loc := "rclone:" + remote
	hopts = hopts.withDefaults()
	if opts.Program == "" {
		opts.Program = "rclone"
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Second
	}
	prog, err := exec.LookPath(opts.Program)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (install rclone)", loc, err)
	}
	env := os.Environ()
	keys := make([]string, 0, len(opts.Env))
	for k := range opts.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := resolveSecret(ctx, res, opts.Env[k])
		if err != nil {
			return nil, fmt.Errorf("open %s: environment %s: %w", loc, k, err)
		}
		env = append(env, k+"="+v)
	}
	args := append([]string{"serve", "restic", "--stdio"}, opts.Args...)
	args = append(args, remote)
	p := &rcloneProcs{prog: prog, args: args, env: env, stop: opts.StopTimeout}
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return p.start()
		},
		// A ping when nothing arrived for a while; no answer within
		// PingTimeout closes the connection (a hung rclone).
		ReadIdleTimeout: hopts.OpTimeout / 2,
		PingTimeout:     min(hopts.OpTimeout/2, 15*time.Second),
	}
	base, _ := url.Parse("http://rclone/")
	r := &REST{loc: loc, base: base, client: newWatchClient(tr, hopts), http: hopts, diag: p.diag,
		closeFn: func() error { tr.CloseIdleConnections(); return p.close() }}
	// The first request starts rclone; its error (a remote rclone does
	// not know, bad credentials) carries what rclone said.
	ho := hopts
	ho.Retries = 0
	r.http = ho
	_, err = r.Stat(ctx, Handle{Type: Config})
	r.http = hopts
	if err != nil && !errors.Is(err, ErrNotExist) {
		r.Close()
		return nil, fmt.Errorf("open %s: %w", loc, err)
	}
	return r, nil
}

// rcloneProcs starts rclone processes (one per connection: the first,
// and one after each that died) and ends them all at Close.
type rcloneProcs struct {
	prog string
	args []string
	env  []string
	stop time.Duration

	mu     sync.Mutex
	live   map[*stdioConn]bool
	stderr tailBuffer // of the last process started
	closed bool
}

func (p *rcloneProcs) start() (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, net.ErrClosed
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p.stderr.reset()
	cmd := exec.Command(p.prog, p.args...)
	cmd.Env = p.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, &p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start rclone: %w", err)
	}
	c := &stdioConn{r: outR, w: inW, cmd: cmd, done: make(chan struct{}), stop: p.stop}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if p.live == nil {
		p.live = map[*stdioConn]bool{}
	}
	p.live[c] = true
	c.onClose = func() {
		p.mu.Lock()
		delete(p.live, c)
		p.mu.Unlock()
	}
	return c, nil
}

// diag adds rclone's last words to err when its process has exited.
func (p *rcloneProcs) diag(err error) error {
	msg := strings.TrimSpace(p.stderr.String())
	if msg == "" {
		return err
	}
	return fmt.Errorf("%w; rclone said: %s", err, msg)
}

func (p *rcloneProcs) close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*stdioConn, 0, len(p.live))
	for c := range p.live {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// stdioConn is a net.Conn over the standard input and output of an
// rclone process. Its deadlines are the pipes' own.
type stdioConn struct {
	r, w    *os.File
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stop    time.Duration
	onClose func()
	once    sync.Once
}

func (c *stdioConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *stdioConn) Write(b []byte) (int, error) { return c.w.Write(b) }

// Close closes rclone's input, which makes it exit, and kills it (its
// process group) if it has not within the stop timeout.
func (c *stdioConn) Close() error {
	c.once.Do(func() {
		c.w.Close()
		t := time.NewTimer(c.stop)
		select {
		case <-c.done:
		case <-t.C:
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
		t.Stop()
		c.r.Close()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}

func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr{} }
func (c *stdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.r.SetReadDeadline(t), c.w.SetWriteDeadline(t))
}
func (c *stdioConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "rclone" }

// tailBuffer keeps the last 4 KiB written to it: rclone's stderr, for
// error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailLimit = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailLimit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailLimit:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(string(t.buf), "?")
}

func (t *tailBuffer) reset() {
	t.mu.Lock()
	t.buf = t.buf[:0]
	t.mu.Unlock()
}
