package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/hostd/hostd/internal/config"
)

// apiSocket is the local API's unix socket. The daemon holds the socket
// lock (socketLockPath) while it runs, so the socket file at path is its
// own: a stale one from a crash is replaced at start, and one deleted or
// replaced while hostd runs is recreated by recreateIfGone.
type apiSocket struct {
	path string
	gid  int // -1: keep the default group
	ln   net.Listener
	ino  uint64
}

// newAPISocket creates the socket: stale file removed, mode 0660, group
// hostd.socket_group when set.
func newAPISocket(core config.Core) (*apiSocket, error) {
	s := &apiSocket{path: core.Socket, gid: -1}
	if core.SocketGroup != "" {
		g, err := user.LookupGroup(core.SocketGroup)
		if err != nil {
			return nil, fmt.Errorf("socket group %s (hostd.socket_group): %w", core.SocketGroup, err)
		}
		s.gid, _ = strconv.Atoi(g.Gid)
	}
	if _, err := os.Lstat(s.path); err == nil {
		// Something answering here that does not hold the socket lock
		// is not a hostd of this version: leave it alone.
		if c, err := net.DialTimeout("unix", s.path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s (hostd.socket): another process is listening there", s.path)
		}
	}
	ln, ino, err := s.listen()
	if err != nil {
		return nil, err
	}
	s.ln, s.ino = ln, ino
	return s, nil
}

// listen replaces whatever is at the path with a new socket.
func (s *apiSocket) listen() (net.Listener, uint64, error) {
	if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
		return nil, 0, fmt.Errorf("remove stale socket %s: %w", s.path, err)
	}
	old := syscall.Umask(0o117)
	ln, err := net.Listen("unix", s.path)
	syscall.Umask(old)
	if err != nil {
		return nil, 0, fmt.Errorf("listen on %s (hostd.socket): %w", s.path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(s.path, 0o660); err != nil {
		ln.Close()
		return nil, 0, fmt.Errorf("chmod %s: %w", s.path, err)
	}
	if s.gid >= 0 {
		if err := os.Chown(s.path, -1, s.gid); err != nil {
			ln.Close()
			return nil, 0, fmt.Errorf("chown %s: %w", s.path, err)
		}
	}
	ino, err := inode(s.path)
	if err != nil {
		ln.Close()
		return nil, 0, err
	}
	return ln, ino, nil
}

func inode(path string) (uint64, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat %s: no inode", path)
	}
	return st.Ino, nil
}

// recreateIfGone checks that the socket file is still the one hostd
// listens on; when it was deleted or replaced it listens anew, hands the
// new listener to serve and closes the old one. Failures are logged and
// retried at the next check.
func (s *apiSocket) recreateIfGone(log *slog.Logger, serve func(net.Listener)) {
	if ino, err := inode(s.path); err == nil && ino == s.ino {
		return
	}
	ln, ino, err := s.listen()
	if err != nil {
		log.Error("API socket is gone and cannot be recreated", "socket", s.path, "err", err.Error())
		return
	}
	log.Warn("API socket was deleted or replaced; recreated it", "socket", s.path)
	old := s.ln
	s.ln, s.ino = ln, ino
	serve(ln)
	_ = old.Close()
}

// close closes the listener; the daemon removes the file.
func (s *apiSocket) close() {
	_ = s.ln.Close()
}
