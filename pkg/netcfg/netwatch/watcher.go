package netwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/service"
)

// Defaults used when Options leave a field zero.
const (
	DefaultProbeInterval = 5 * time.Minute
	DefaultProbeTimeout  = 10 * time.Second
	// keptEvents is how many recent events State carries.
	keptEvents = 32
)

// ReasonNoDefaultRoute is State.Reason when no default route exists.
const ReasonNoDefaultRoute = "offline: no default route"

// Options configure a Watcher.
type Options struct {
	// NetNS is the network namespace to watch; nil watches hostd's own.
	NetNS *netns.NsHandle
	// Links are declared link states applied at start and after every
	// change.
	Links []LinkSpec
	// ProbeURL is fetched (HTTP GET, any 2xx or 3xx answer passes) to decide
	// whether a default route really reaches the network. Empty: a usable
	// default route alone means online.
	ProbeURL string
	// ProbeInterval is the time between probes; 0 means DefaultProbeInterval.
	// A probe also runs whenever the default route changes.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe; 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// HTTPClient makes the probe requests; nil uses a client with no proxy.
	HTTPClient *http.Client

	Clock   service.Clock         // nil: service.RealClock
	Logger  *slog.Logger          // nil discards
	Metrics prometheus.Registerer // nil registers nothing

	// OnChange is called (from the watcher's goroutine) with each new
	// state that differs from the last in Online, Reason or DefaultRoute.
	OnChange func(State)
	// OnEvent is called (from the watcher's goroutine) with each event.
	OnEvent func(Event)
}

// Watcher follows links, addresses and routes through netlink
// subscriptions, decides whether the host is online, and keeps declared
// links as configured.
type Watcher struct {
	o       Options
	log     *slog.Logger
	metrics *metrics

	// seen is each link as its last link event (or the first dump) showed
	// it; events are derived from it rather than from dumps, which can be
	// newer than the event being handled. Only Run's goroutine uses it.
	seen map[int]Link

	mu    sync.Mutex
	state State
}

// New checks the options and builds a Watcher; Run starts it.
func New(o Options) (*Watcher, error) {
	if o.Clock == nil {
		o.Clock = service.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	}
	var errs []error
	for i, s := range o.Links {
		for _, p := range s.Check() {
			errs = append(errs, fmt.Errorf("links[%d].%s: %s", i, p.Field, p.Msg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	w := &Watcher{o: o, log: o.Logger}
	w.state.Reason = "offline: not watching yet"
	m, err := newMetrics(o.Metrics, w)
	if err != nil {
		return nil, fmt.Errorf("register network metrics: %w", err)
	}
	w.metrics = m
	return w, nil
}

// State returns the last snapshot; cheap and safe for concurrent use.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.state
	s.Links = slices.Clone(s.Links)
	s.Events = slices.Clone(s.Events)
	s.Problems = slices.Clone(s.Problems)
	return s
}

// Run subscribes to netlink and follows changes until ctx is done. It
// returns an error when the subscriptions cannot be opened or break (the
// kernel dropped messages); the caller restarts it.
func (w *Watcher) Run(ctx context.Context) error {
	return w.RunIn(ctx, w.o.NetNS)
}

// RunIn is Run in the namespace nsh instead of Options.NetNS; nil is
// hostd's own namespace.
func (w *Watcher) RunIn(ctx context.Context, nsh *netns.NsHandle) error {
	ns := netns.None()
	if nsh != nil {
		ns = *nsh
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	defer h.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The subscription goroutines stop when done closes; each then closes
	// its channel, which the drain below waits for.
	done := make(chan struct{})
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	subErr := make(chan error, 3)
	onErr := func(err error) {
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			return
		}
		select {
		case subErr <- err:
		default:
		}
	}
	defer func() {
		close(done)
		for links != nil || addrs != nil || routes != nil {
			select {
			case _, ok := <-links:
				if !ok {
					links = nil
				}
			case _, ok := <-addrs:
				if !ok {
					addrs = nil
				}
			case _, ok := <-routes:
				if !ok {
					routes = nil
				}
			}
		}
		w.mu.Lock()
		w.state.Running = false
		w.state.Online = false
		w.state.Reason = "offline: not watching"
		w.mu.Unlock()
	}()
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: &ns, ErrorCallback: onErr}); err != nil {
		close(links)
		close(addrs)
		close(routes)
		return fmt.Errorf("subscribe to link changes: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &ns, ErrorCallback: onErr}); err != nil {
		close(addrs)
		close(routes)
		return fmt.Errorf("subscribe to address changes: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &ns, ErrorCallback: onErr}); err != nil {
		close(routes)
		return fmt.Errorf("subscribe to route changes: %w", err)
	}

	// The probe runs in its own goroutine so a slow probe never delays
	// netlink events.
	probeNow := make(chan struct{}, 1)
	probes := make(chan Probe, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait: stops the prober
	if w.o.ProbeURL != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.probeLoop(ctx, probeNow, probes)
		}()
	}

	// Subscribed first, listed second: nothing between the two is missed.
	lastDefault := ""
	resync := func() error {
		st, err := w.dump(h)
		if err != nil {
			return err
		}
		if len(w.o.Links) > 0 {
			var problems []string
			rc := reconciler{h: h}
			for _, spec := range w.o.Links {
				did, errs := rc.apply(spec)
				for _, d := range did {
					w.log.Info("declared link state restored", "action", d)
					w.metrics.reconciled.WithLabelValues(spec.Name).Inc()
				}
				for _, e := range errs {
					problems = append(problems, e.Error())
				}
				if len(did) > 0 {
					// Our own change: list again so the state shows it.
					if st2, err := w.dump(h); err == nil {
						st = st2
					}
				}
			}
			st.Problems = problems
		}
		def := ""
		if st.DefaultRoute != nil {
			def = fmt.Sprint(*st.DefaultRoute)
		}
		if def != lastDefault && def != "" && w.o.ProbeURL != "" {
			select {
			case probeNow <- struct{}{}:
			default:
			}
		}
		lastDefault = def
		w.publish(func(s *State) {
			s.Running = true
			s.Links, s.DefaultRoute, s.Problems = st.Links, st.DefaultRoute, st.Problems
		})
		return nil
	}
	if err := resync(); err != nil {
		return err
	}
	w.seen = map[int]Link{}
	for _, l := range w.State().Links {
		w.seen[l.Index] = l
	}
	// handle takes one update; it reports false when a subscription closed.
	handle := func(kind string, ok bool, apply func()) error {
		if !ok {
			return fmt.Errorf("netlink %s subscription closed", kind)
		}
		apply()
		return nil
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case err := <-subErr:
			return fmt.Errorf("netlink subscription: %w", err)
		case p := <-probes:
			w.publish(func(s *State) { s.Probe = &p })
			continue
		case u, ok := <-links:
			err = handle("link", ok, func() { w.linkEvent(u) })
		case u, ok := <-addrs:
			err = handle("address", ok, func() { w.addrEvent(u) })
		case u, ok := <-routes:
			err = handle("route", ok, func() { w.routeEvent(u) })
		}
		// Take whatever else is already queued (a container runtime
		// creating links sends bursts) before listing everything once.
		for drained := false; err == nil && !drained; {
			select {
			case u, ok := <-links:
				err = handle("link", ok, func() { w.linkEvent(u) })
			case u, ok := <-addrs:
				err = handle("address", ok, func() { w.addrEvent(u) })
			case u, ok := <-routes:
				err = handle("route", ok, func() { w.routeEvent(u) })
			default:
				drained = true
			}
		}
		if err != nil {
			return err
		}
		if err := resync(); err != nil {
			return err
		}
	}
}

// dump lists links, addresses and routes.
func (w *Watcher) dump(h *netlink.Handle) (State, error) {
	var st State
	ls, err := h.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return st, fmt.Errorf("list links: %w", err)
	}
	all, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return st, fmt.Errorf("list addresses: %w", err)
	}
	addrsOf := map[int][]netlink.Addr{}
	for _, a := range all {
		addrsOf[a.LinkIndex] = append(addrsOf[a.LinkIndex], a)
	}
	byIndex := map[int]*Link{}
	for _, l := range ls {
		st.Links = append(st.Links, linkOf(l, addrsOf[l.Attrs().Index]))
	}
	sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Index < st.Links[j].Index })
	for i := range st.Links {
		byIndex[st.Links[i].Index] = &st.Links[i]
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteList(nil, fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return st, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			if !isDefault(r) || linkDown(r) || r.Type == unix.RTN_UNREACHABLE || r.Type == unix.RTN_BLACKHOLE || r.Type == unix.RTN_PROHIBIT {
				continue
			}
			l := byIndex[r.LinkIndex]
			if l == nil || !l.Usable() {
				continue
			}
			cand := &Route{Family: "ipv4", Link: l.Name, Metric: r.Priority}
			if fam == netlink.FAMILY_V6 {
				cand.Family = "ipv6"
			}
			if r.Gw != nil {
				cand.Gateway = r.Gw.String()
			}
			if st.DefaultRoute == nil || (cand.Family == st.DefaultRoute.Family && cand.Metric < st.DefaultRoute.Metric) {
				st.DefaultRoute = cand
			}
		}
	}
	return st, nil
}

// publish updates the state under the lock, recomputes the verdict and
// tells OnChange when it moved.
func (w *Watcher) publish(update func(*State)) {
	w.mu.Lock()
	before := w.state
	update(&w.state)
	s := &w.state
	switch {
	case s.DefaultRoute == nil:
		s.Online, s.Reason = false, ReasonNoDefaultRoute
	case w.o.ProbeURL != "" && s.Probe == nil:
		s.Online, s.Reason = false, "offline: connectivity probe pending"
	case w.o.ProbeURL != "" && !s.Probe.OK:
		s.Online, s.Reason = false, "offline: connectivity probe failed: "+s.Probe.Error
	default:
		s.Online, s.Reason = true, ""
	}
	changed := before.Online != s.Online || before.Reason != s.Reason || !reflect.DeepEqual(before.DefaultRoute, s.DefaultRoute) || before.Running != s.Running
	after := *s
	w.mu.Unlock()
	if changed {
		attrs := []any{"online", after.Online}
		if after.Reason != "" {
			attrs = append(attrs, "reason", after.Reason)
		}
		if r := after.DefaultRoute; r != nil {
			attrs = append(attrs, "default_route", r.String())
		}
		w.log.Info("network state", attrs...)
		if w.o.OnChange != nil {
			w.o.OnChange(after)
		}
	}
}

// record appends an event.
func (w *Watcher) record(e Event) {
	e.Time = w.o.Clock.Now()
	w.mu.Lock()
	w.state.Events = append(w.state.Events, e)
	if n := len(w.state.Events); n > keptEvents {
		w.state.Events = slices.Delete(w.state.Events, 0, n-keptEvents)
	}
	w.state.Changes++
	w.mu.Unlock()
	if e.Link != "" {
		w.metrics.changes.WithLabelValues(e.Link, e.Kind).Inc()
	}
	w.log.Debug("network event", "kind", e.Kind, "action", e.Action, "link", e.Link, "detail", e.Detail)
	if w.o.OnEvent != nil {
		w.o.OnEvent(e)
	}
}

func (w *Watcher) linkName(index int) string {
	if l, ok := w.seen[index]; ok {
		return l.Name
	}
	return fmt.Sprintf("if%d", index)
}

func (w *Watcher) linkEvent(u netlink.LinkUpdate) {
	now := linkOf(u.Link, nil)
	prev, known := w.seen[now.Index]
	w.seen[now.Index] = now
	switch {
	case u.Header.Type == unix.RTM_DELLINK:
		delete(w.seen, now.Index)
		w.record(Event{Kind: "link", Action: "removed", Link: now.Name})
	case !known:
		w.record(Event{Kind: "link", Action: "added", Link: now.Name, Detail: now.Type})
	default:
		if prev.AdminUp != now.AdminUp {
			w.record(Event{Kind: "link", Action: map[bool]string{true: "up", false: "down"}[now.AdminUp], Link: now.Name})
		}
		if prev.Carrier != now.Carrier {
			w.record(Event{Kind: "link", Action: map[bool]string{true: "carrier-on", false: "carrier-off"}[now.Carrier], Link: now.Name})
		}
		if prev.MTU != now.MTU {
			w.record(Event{Kind: "link", Action: "mtu", Link: now.Name, Detail: fmt.Sprint(now.MTU)})
		}
		if prev.Name != now.Name {
			w.record(Event{Kind: "link", Action: "renamed", Link: now.Name, Detail: prev.Name})
		}
	}
}

func (w *Watcher) addrEvent(u netlink.AddrUpdate) {
	action := "removed"
	if u.NewAddr {
		action = "added"
	}
	w.record(Event{Kind: "address", Action: action, Link: w.linkName(u.LinkIndex), Detail: u.LinkAddress.String()})
}

func (w *Watcher) routeEvent(u netlink.RouteUpdate) {
	action := "removed"
	if u.Type == unix.RTM_NEWROUTE {
		action = "added"
	}
	dst := "default"
	if !isDefault(u.Route) {
		dst = u.Route.Dst.String()
	}
	if u.Route.Gw != nil {
		dst += " via " + u.Route.Gw.String()
	}
	if u.Route.Table != 0 && u.Route.Table != unix.RT_TABLE_MAIN {
		return // local and other tables: noise for this purpose
	}
	w.record(Event{Kind: "route", Action: action, Link: w.linkName(u.Route.LinkIndex), Detail: dst})
}

// probeLoop probes on request and ProbeInterval after the last probe.
func (w *Watcher) probeLoop(ctx context.Context, now <-chan struct{}, out chan<- Probe) {
	t := w.o.Clock.NewTimer(w.o.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-now:
		case <-t.C():
		}
		t.Reset(w.o.ProbeInterval)
		p := w.probe(ctx)
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
	}
}

// probe fetches ProbeURL once.
func (w *Watcher) probe(ctx context.Context) Probe {
	p := Probe{URL: w.o.ProbeURL}
	ctx, cancel := context.WithTimeout(ctx, w.o.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.o.ProbeURL, nil)
	if err == nil {
		var resp *http.Response
		resp, err = w.o.HTTPClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 400 {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
	}
	p.Checked = w.o.Clock.Now()
	p.OK = err == nil
	if err != nil {
		p.Error = err.Error()
	}
	w.metrics.probes.WithLabelValues(map[bool]string{true: "ok", false: "failed"}[p.OK]).Inc()
	return p
}
