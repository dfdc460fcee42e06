package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hostd/hostd/internal/safefile"
)

// SFTPOptions configures the SFTP backend. Zero values pick OpenSSH's
// defaults for the current user.
type SFTPOptions struct {
	// KnownHosts is the known_hosts file the server key is checked
	// against; default ~/.ssh/known_hosts. Unknown hosts are refused.
	KnownHosts string
	// IdentityFiles are private keys to try; default ~/.ssh/id_ed25519,
	// ~/.ssh/id_ecdsa and ~/.ssh/id_rsa (those that exist).
	IdentityFiles []string
	// NoAgent disables the agent at $SSH_AUTH_SOCK.
	NoAgent bool
	// Timeout bounds connecting, the SSH handshake and the start of the
	// SFTP session (also the wait for the ssh-agent's keys); default
	// DefaultConnectTimeout.
	Timeout time.Duration
	// OpTimeout bounds each wait for the server during an operation: an
	// operation under way while nothing arrives from the server for this
	// long fails with ErrTimeout, and the connection is closed (every
	// later operation fails too). A long transfer is fine as long as the
	// server keeps answering. Default DefaultOpTimeout.
	OpTimeout time.Duration
}

// Deadlines of the SFTP backend when SFTPOptions leaves them zero.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultOpTimeout      = 60 * time.Second
)

// ErrTimeout is wrapped by errors of operations the storage server did
// not answer in time.
var ErrTimeout = errors.New("storage server did not answer in time")

// SFTP stores the repository in a directory of an SFTP server.
type SFTP struct {
	loc    string
	root   string
	conn   *ssh.Client
	client *sftp.Client

	nc        *watchConn
	opTimeout time.Duration
	mu        sync.Mutex
	ops       map[uint64]time.Time // start of each operation under way
	nextOp    uint64
	expired   atomic.Bool   // the watchdog closed the connection
	stop      chan struct{} // closed by Close: the watchdog returns
	stopped   chan struct{} // closed by the watchdog when it returns
	closeOnce sync.Once
}

// watchConn records when the server last sent anything.
type watchConn struct {
	net.Conn
	lastRead atomic.Int64 // UnixNano
}

func (c *watchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

var _ Backend = (*SFTP)(nil)
var _ BufferLoader = (*SFTP)(nil)

// OpenSFTP connects to u (sftp://user@host[:port]/path).
func OpenSFTP(ctx context.Context, u *url.URL, opts SFTPOptions) (*SFTP, error) {
	loc := (&url.URL{Scheme: u.Scheme, User: url.User(u.User.Username()), Host: u.Host, Path: u.Path}).String()
	if u.Host == "" || u.Path == "" {
		return nil, fmt.Errorf("repository url %s: want sftp://user@host[:port]/path", loc)
	}
	home, _ := os.UserHomeDir()
	if opts.KnownHosts == "" {
		opts.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultConnectTimeout
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	// knownhosts opens the file itself: refuse a FIFO or device first.
	if _, err := safefile.Read(opts.KnownHosts, safefile.ConfigLimit); err != nil {
		return nil, fmt.Errorf("connect %s: read known_hosts: %w", loc, err)
	}
	hostKeys, err := knownhosts.New(opts.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("connect %s: read known_hosts: %w", loc, err)
	}
	var signers []ssh.Signer
	agentKeys := 0
	if !opts.NoAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			d := net.Dialer{Timeout: opts.Timeout}
			if c, err := d.DialContext(ctx, "unix", sock); err == nil {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(opts.Timeout))
				if s, err := agent.NewClient(c).Signers(); err == nil {
					signers = append(signers, s...)
					agentKeys = len(s)
				}
			}
		}
	}
	ids := opts.IdentityFiles
	if ids == nil {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			ids = append(ids, filepath.Join(home, ".ssh", n))
		}
	}
	for _, p := range ids {
		b, err := safefile.Read(p, safefile.KeyFileLimit)
		if errors.Is(err, fs.ErrNotExist) && opts.IdentityFiles == nil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("connect %s: read identity: %w", loc, err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("connect %s: parse identity %s: %w", loc, p, err)
		}
		signers = append(signers, s)
	}
	user := u.User.Username()
	if user == "" {
		user = os.Getenv("USER")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "22")
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: hostKeys,
		Timeout:         opts.Timeout,
	}
	d := net.Dialer{Timeout: opts.Timeout}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", loc, err)
	}
	// The deadline covers the SSH handshake and the start of the SFTP
	// session; the watchdog (see watch) takes over after.
	wc := &watchConn{Conn: nc}
	_ = nc.SetDeadline(time.Now().Add(opts.Timeout))
	sc, chans, reqs, err := ssh.NewClientConn(wc, host, cfg)
	if err != nil {
		nc.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("connect %s: %w: no SSH handshake within %s (%v)", loc, ErrTimeout, opts.Timeout, err)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, fmt.Errorf("connect %s: %w (as %s: %d keys from ssh-agent, %d from identity files)", loc, err, user, agentKeys, len(signers)-agentKeys)
		}
		return nil, fmt.Errorf("connect %s: %w", loc, err)
	}
	conn := ssh.NewClient(sc, chans, reqs)
	client, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect %s: start sftp: %w", loc, err)
	}
	_ = nc.SetDeadline(time.Time{})
	s := &SFTP{loc: loc, root: path.Clean(u.Path), conn: conn, client: client,
		nc: wc, opTimeout: opts.OpTimeout, ops: map[uint64]time.Time{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.watch()
	return s, nil
}

// watch closes the connection when an operation is under way and the
// server has sent nothing for opTimeout since it started (or since the
// last bytes arrived): every pending request then fails at once instead
// of waiting for a server that stopped answering. It returns on Close.
func (s *SFTP) watch() {
	defer close(s.stopped)
	tick := time.NewTicker(max(s.opTimeout/8, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.mu.Lock()
			var oldest time.Time
			for _, t := range s.ops {
				if oldest.IsZero() || t.Before(oldest) {
					oldest = t
				}
			}
			s.mu.Unlock()
			if oldest.IsZero() {
				continue
			}
			last := time.Unix(0, s.nc.lastRead.Load())
			if last.Before(oldest) {
				last = oldest
			}
			if now.Sub(last) > s.opTimeout {
				s.expired.Store(true)
				_ = s.nc.Close()
				return
			}
		}
	}
}

// begin registers an operation with the watchdog; the caller calls the
// returned function when it is done and passes its error through fail.
func (s *SFTP) begin(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.expired.Load() {
		return nil, s.timeoutErr()
	}
	s.mu.Lock()
	id := s.nextOp
	s.nextOp++
	s.ops[id] = time.Now()
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.ops, id)
		s.mu.Unlock()
	}, nil
}

// fail returns err, or ErrTimeout's error when the watchdog closed the
// connection under it.
func (s *SFTP) fail(err error) error {
	if err != nil && s.expired.Load() {
		return fmt.Errorf("%w (%v)", s.timeoutErr(), err)
	}
	return err
}

func (s *SFTP) timeoutErr() error {
	return fmt.Errorf("%s: %w: nothing received for %s, connection closed", s.loc, ErrTimeout, s.opTimeout)
}

// Location returns the URL without credentials.
func (s *SFTP) Location() string { return s.loc }

func (s *SFTP) path(h Handle) string { return path.Join(s.root, h.relPath()) }

// Create makes the repository directories.
func (s *SFTP) Create(ctx context.Context) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { done(); err = s.fail(err) }()
	if _, err := s.client.Stat(s.path(Handle{Type: Config})); err == nil {
		return fmt.Errorf("create repository %s: %w", s.loc, fs.ErrExist)
	}
	entries, err := s.client.ReadDir(s.root)
	if err != nil && !errors.Is(mapErr(err), fs.ErrNotExist) {
		return fmt.Errorf("create repository %s: %w", s.loc, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if err := checkForeign(s.loc, names); err != nil {
		return err
	}
	for _, t := range Types() {
		if err := s.client.MkdirAll(path.Join(s.root, string(t))); err != nil {
			return fmt.Errorf("create repository %s: %w", s.loc, err)
		}
	}
	for i := range 256 {
		if err := s.client.MkdirAll(path.Join(s.root, "data", fmt.Sprintf("%02x", i))); err != nil {
			return fmt.Errorf("create repository %s: %w", s.loc, err)
		}
	}
	return nil
}

// Save writes a temporary file, fsyncs it (fsync@openssh.com) and renames
// it into place with posix-rename@openssh.com.
func (s *SFTP) Save(ctx context.Context, h Handle, data []byte) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	defer func() { done(); err = s.fail(err) }()
	final := s.path(h)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(final), ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := s.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		if mkErr := s.client.MkdirAll(path.Dir(final)); mkErr == nil {
			f, err = s.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		}
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
		var se *sftp.StatusError
		if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported {
			err = nil // server without fsync@openssh.com
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.client.PosixRename(tmp, final)
	}
	if err != nil {
		_ = s.client.Remove(tmp)
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

// Load reads part or all of h.
func (s *SFTP) Load(ctx context.Context, h Handle, offset int64, length int) (_ []byte, err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	defer func() { done(); err = s.fail(err) }()
	if length <= 0 {
		// Checked before the open: the server's open of a FIFO would
		// block (and end in ErrTimeout).
		fi, err := s.client.Stat(s.path(h))
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", h, mapErr(err))
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("load %s: %w", h, safefile.ErrNotRegular)
		}
		if length, err = wholeLength(h, offset, fi.Size()); err != nil {
			return nil, err
		}
		if length == 0 {
			return []byte{}, nil
		}
	}
	f, err := s.client.Open(s.path(h))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, mapErr(err))
	}
	defer f.Close()
	buf := make([]byte, length)
	if err := readFull(f, h, offset, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// LoadInto reads len(buf) bytes of h at offset into buf.
func (s *SFTP) LoadInto(ctx context.Context, h Handle, offset int64, buf []byte) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("load %s: %w", h, err)
	}
	defer func() { done(); err = s.fail(err) }()
	f, err := s.client.Open(s.path(h))
	if err != nil {
		return fmt.Errorf("load %s: %w", h, mapErr(err))
	}
	defer f.Close()
	return readFull(f, h, offset, buf)
}

// Stat returns the size of h.
func (s *SFTP) Stat(ctx context.Context, h Handle) (_ int64, err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h, err)
	}
	defer func() { done(); err = s.fail(err) }()
	fi, err := s.client.Stat(s.path(h))
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", h, mapErr(err))
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("stat %s: %w", h, safefile.ErrNotRegular)
	}
	return fi.Size(), nil
}

// List calls fn for each file of type t.
func (s *SFTP) List(ctx context.Context, t FileType, fn func(string, int64) error) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	defer func() { done(); err = s.fail(err) }()
	err = s.walk(ctx, path.Join(s.root, string(t)), func(_ string, fi os.FileInfo) error {
		if fi.IsDir() || isTemp(fi.Name()) {
			return nil
		}
		return fn(fi.Name(), fi.Size())
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// walk calls fn for dir and every entry below it (a missing dir has
// none); fn returning fs.SkipDir for a directory skips what is below it.
func (s *SFTP) walk(ctx context.Context, dir string, fn func(p string, fi os.FileInfo) error) error {
	w := s.client.Walk(dir)
	for w.Step() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.Err(); err != nil {
			if errors.Is(mapErr(err), fs.ErrNotExist) {
				continue
			}
			return err
		}
		switch err := fn(w.Path(), w.Stat()); {
		case errors.Is(err, fs.SkipDir):
			w.SkipDir()
		case err != nil:
			return err
		}
	}
	return nil
}

// Remove deletes h.
func (s *SFTP) Remove(ctx context.Context, h Handle) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	defer func() { done(); err = s.fail(err) }()
	if err := s.client.Remove(s.path(h)); err != nil {
		return fmt.Errorf("remove %s: %w", h, mapErr(err))
	}
	return nil
}

// ListTemp calls fn for every temporary file in the repository.
func (s *SFTP) ListTemp(ctx context.Context, fn func(TempFile) error) (err error) {
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("list temporary files: %w", err)
	}
	defer func() { done(); err = s.fail(err) }()
	prefix := s.root + "/" // what walked paths start with
	switch s.root {
	case ".":
		prefix = ""
	case "/":
		prefix = "/"
	}
	for _, d := range tempDirs() {
		base := path.Join(s.root, d)
		err := s.walk(ctx, base, func(p string, fi os.FileInfo) error {
			if fi.IsDir() {
				if d == "." && p != base {
					return fs.SkipDir // the type trees are walked on their own
				}
				return nil
			}
			if !isTemp(fi.Name()) {
				return nil
			}
			return fn(TempFile{Path: strings.TrimPrefix(p, prefix), Size: fi.Size(), ModTime: fi.ModTime()})
		})
		if err != nil {
			return fmt.Errorf("list temporary files in %s: %w", base, err)
		}
	}
	return nil
}

// RemoveTemp deletes the temporary file rel.
func (s *SFTP) RemoveTemp(ctx context.Context, rel string) (err error) {
	if err := checkTemp(rel); err != nil {
		return err
	}
	done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("remove temporary file: %w", err)
	}
	defer func() { done(); err = s.fail(err) }()
	if err := s.client.Remove(path.Join(s.root, rel)); err != nil && !errors.Is(mapErr(err), fs.ErrNotExist) {
		return fmt.Errorf("remove temporary file: %w", mapErr(err))
	}
	return nil
}

// Close ends the SFTP session and the SSH connection.
func (s *SFTP) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.stopped
	err := s.client.Close()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	if s.expired.Load() {
		return nil // the watchdog closed the connection; the error was reported
	}
	return err
}

func mapErr(err error) error {
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxNoSuchFile {
		return fmt.Errorf("%w: %s", fs.ErrNotExist, strconv.Quote(se.Error()))
	}
	return err
}
