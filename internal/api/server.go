package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/sys/unix"
)

// WriteJSON writes v as a JSON reply with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes err as a JSON error reply.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, Error{Error: err.Error()})
}

// Peer is the identity of the process on the other end of the socket.
type Peer struct {
	PID, UID, GID int
}

type peerKey struct{}

// ConnContext is an http.Server.ConnContext that records the peer's
// credentials of unix-socket connections.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)})
}

// PeerFrom returns the peer recorded by ConnContext.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// CanWrite reports whether the peer may call mutating endpoints: root, or
// the user the daemon runs as. Members of the socket's group may read.
// The daemon checks it before every route declared service.Write.
func CanWrite(ctx context.Context) error {
	p, ok := PeerFrom(ctx)
	if !ok {
		return errors.New("mutating requests are only accepted on the unix socket")
	}
	if p.UID == 0 || p.UID == os.Getuid() {
		return nil
	}
	return fmt.Errorf("uid %d may not change hostd: run as root or as the hostd user", p.UID)
}
