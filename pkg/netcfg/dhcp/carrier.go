package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service"
)

// StateNoCarrier is the state of a client whose link has lost carrier: its
// address stays for Options.CarrierGrace, then goes; the lease is kept
// and asked for again (INIT-REBOOT) when carrier comes back.
const StateNoCarrier = "no-carrier"

// watchCarrier follows the link's carrier through a netlink subscription
// in ns until ctx ends, and sends each change on out. The state sent is
// read afresh from the kernel after each event, so an event older than
// the last read never reports a stale state. The first value sent is the
// state at subscription time.
func watchCarrier(ctx context.Context, ns *netns.NsHandle, link string, out chan<- bool) error {
	nsh := netns.None()
	if ns != nil {
		nsh = *ns
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink for carrier of %s: %w", link, err)
	}
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	// Errors of the subscription end it (its channel closes), which is
	// handled below; the callback only keeps them from being printed.
	opts := netlink.LinkSubscribeOptions{Namespace: ns, ErrorCallback: func(error) {}}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		h.Close()
		return fmt.Errorf("subscribe to link changes of %s: %w", link, err)
	}
	read := func() (bool, error) {
		l, err := h.LinkByName(link)
		if err != nil {
			return false, fmt.Errorf("link %s: %w", link, err)
		}
		return hasCarrier(l.Attrs()), nil
	}
	up, err := read()
	if err != nil {
		close(done)
		h.Close()
		return err
	}
	out <- up
	go func() {
		defer func() {
			h.Close()
			close(done)
			for range updates { // until the subscription's goroutine ends
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					// The subscription failed: report no carrier rather
					// than trust a link that cannot be followed.
					send(ctx, out, false)
					<-ctx.Done()
					return
				}
				if u.Attrs().Name != link {
					continue
				}
				now, err := read()
				if err != nil {
					now = false // the link is gone
				}
				if now != up {
					up = now
					send(ctx, out, up)
				}
			}
		}
	}()
	return nil
}

// hasCarrier reports whether the link is admin up with carrier.
func hasCarrier(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

func send(ctx context.Context, out chan<- bool, v bool) {
	select {
	case out <- v:
	case <-ctx.Done():
	}
}

// carrierLoss is what the v4 and v6 clients share while their link has no
// carrier: the grace of the address, the expiry of the lease, and Renew
// refused.
type carrierLoss struct {
	clock   service.Clock
	log     *slog.Logger
	link    string
	grace   time.Duration     // Options.CarrierGrace
	carrier <-chan bool       // the link's carrier changes
	force   <-chan chan error // Renew's requests
	// held says a lease is held; it expires at expires (zero: never).
	held    bool
	expires time.Time
	// unconfigure takes the held lease's address off the link but keeps
	// the lease; expire drops the lease, which has expired.
	unconfigure, expire func()
}

// wait waits for carrier to come back, or ctx to end, and sets *up to
// each carrier value received. A held lease's address stays for grace,
// then goes; the lease goes when it expires. wait reports whether the
// lease is still held.
func (w carrierLoss) wait(ctx context.Context, up *bool) bool {
	var grace, expiry <-chan time.Time
	if w.held {
		if w.grace > 0 {
			t := w.clock.NewTimer(w.grace)
			defer t.Stop()
			grace = t.C()
		} else {
			w.unconfigure()
		}
		if !w.expires.IsZero() {
			t := w.clock.NewTimer(w.expires.Sub(w.clock.Now()))
			defer t.Stop()
			expiry = t.C()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return w.held
		case *up = <-w.carrier:
			if *up {
				w.log.Info("link has carrier again")
				return w.held
			}
		case <-grace:
			grace = nil
			w.unconfigure()
		case <-expiry:
			grace, expiry = nil, nil
			w.held = false
			w.expire()
		case res := <-w.force:
			res <- fmt.Errorf("renew %s: the link has no carrier", w.link)
		}
	}
}

// askRenew sends a Renew request on force to the running client (named
// in the error) of link and waits for the outcome or ctx.
func askRenew(ctx context.Context, force chan<- chan error, link, client string) error {
	res := make(chan error, 1)
	select {
	case force <- res:
	case <-ctx.Done():
		return fmt.Errorf("renew %s: %s is busy or not running: %w", link, client, ctx.Err())
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return fmt.Errorf("renew %s: %w", link, ctx.Err())
	}
}
