package netcfg

import (
	"context"
	"log/slog"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hostd/hostd/internal/testenv"
)

// TestDefaultDNSListen checks the choice of address when dns.listen is
// empty, in a network namespace of the test's own (so port 53 of the host
// is never touched): as root 127.0.0.53:53 while it is free, else
// 127.0.0.1:5353, and always the fallback when not root.
func TestDefaultDNSListen(t *testing.T) {
	testenv.RequireRoot(t)
	type result struct {
		got   []string
		nsErr error // the namespace could not be made
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// The thread enters a new namespace and is never unlocked, so
		// it ends with this goroutine instead of serving other code.
		runtime.LockOSThread()
		var r result
		defer func() { done <- r }()
		ns, err := netns.New()
		if err != nil {
			r.nsErr = err
			return
		}
		defer ns.Close()
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			r.nsErr = err
			return
		}
		ctx := context.Background()
		s := &Service{log: slog.New(slog.DiscardHandler), euid: func() int { return 0 }}
		first, err := s.listenDNS(ctx) // free: the stub address
		if err != nil {
			r.err = err
			return
		}
		defer first.Close()
		second, err := s.listenDNS(ctx) // taken: the fallback
		if err != nil {
			r.err = err
			return
		}
		second.Close()
		s.euid = func() int { return 1000 }
		third, err := s.listenDNS(ctx) // not root: the fallback
		if err != nil {
			r.err = err
			return
		}
		third.Close()
		r.got = []string{first.Addr(), second.Addr(), third.Addr()}
	}()
	r := <-done
	testenv.Require(t, "network namespace", r.nsErr)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := []string{"127.0.0.53:53", "127.0.0.1:5353", "127.0.0.1:5353"}
	for i := range want {
		if i >= len(r.got) || r.got[i] != want[i] {
			t.Fatalf("listen addresses = %v, want %v", r.got, want)
		}
	}
}
