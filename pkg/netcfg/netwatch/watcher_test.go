package netwatch_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/netcfg/netwatch"
)

// events collects what a watcher reports.
type events struct {
	mu  sync.Mutex
	all []netwatch.Event
}

func (e *events) add(ev netwatch.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// has reports whether an event with kind, action, link and (if not empty)
// detail was seen.
func (e *events) has(kind, action, link, detail string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Kind == kind && ev.Action == action && ev.Link == link && (detail == "" || ev.Detail == detail) {
			return nil
		}
	}
	return fmt.Errorf("no %s %s event for %s %s among %+v", kind, action, link, detail, e.all)
}

// start runs a watcher in the test's namespace until the test ends.
func start(t *testing.T, ns *testenv.NetNS, o netwatch.Options) (*netwatch.Watcher, *events, *prometheus.Registry) {
	t.Helper()
	h := ns.Handle(t)
	ev := &events{}
	reg := prometheus.NewRegistry()
	o.NetNS, o.OnEvent, o.Metrics = &h, ev.add, reg
	w, err := netwatch.New(o)
	if err != nil {
		t.Fatalf("new watcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if !w.State().Running {
			return fmt.Errorf("watcher not running")
		}
		return nil
	})
	return w, ev, reg
}

func online(w *netwatch.Watcher, want bool, reason string) func() error {
	return func() error {
		s := w.State()
		if s.Online != want || !strings.HasPrefix(s.Reason, reason) {
			return fmt.Errorf("online=%v reason=%q, want online=%v reason %q", s.Online, s.Reason, want, reason)
		}
		return nil
	}
}

func TestWatcherEventsAndOnline(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	ns.PeerIP(t, "addr", "add", "192.0.2.1/24", "dev", ns.PeerLink)
	w, ev, reg := start(t, ns, netwatch.Options{})

	if err := online(w, false, netwatch.ReasonNoDefaultRoute)(); err != nil {
		t.Fatalf("fresh namespace: %v", err)
	}
	steps := []struct {
		name   string
		run    []string // ip -n NS ...
		peer   []string // ip -n PEER ...
		events [][4]string
		online bool
		reason string
	}{
		{"link up", []string{"link", "set", ns.Link, "up"}, nil,
			[][4]string{{"link", "up", ns.Link, ""}, {"link", "carrier-on", ns.Link, ""}}, false, netwatch.ReasonNoDefaultRoute},
		{"address added", []string{"addr", "add", "192.0.2.10/24", "dev", ns.Link}, nil,
			[][4]string{{"address", "added", ns.Link, "192.0.2.10/24"}}, false, netwatch.ReasonNoDefaultRoute},
		{"default route", []string{"route", "add", "default", "via", "192.0.2.1"}, nil,
			[][4]string{{"route", "added", ns.Link, "default via 192.0.2.1"}}, true, ""},
		{"peer down: carrier lost", nil, []string{"link", "set", ns.PeerLink, "down"},
			[][4]string{{"link", "carrier-off", ns.Link, ""}}, false, netwatch.ReasonNoDefaultRoute},
		{"peer up again", nil, []string{"link", "set", ns.PeerLink, "up"},
			[][4]string{{"link", "carrier-on", ns.Link, ""}}, true, ""},
		{"address removed", []string{"addr", "del", "192.0.2.10/24", "dev", ns.Link}, nil,
			[][4]string{{"address", "removed", ns.Link, "192.0.2.10/24"}}, false, netwatch.ReasonNoDefaultRoute},
		{"link down", []string{"link", "set", ns.Link, "down"}, nil,
			[][4]string{{"link", "down", ns.Link, ""}}, false, netwatch.ReasonNoDefaultRoute},
	}
	for _, st := range steps {
		if st.run != nil {
			ns.IP(t, st.run...)
		}
		if st.peer != nil {
			ns.PeerIP(t, st.peer...)
		}
		for _, e := range st.events {
			testenv.WaitFor(t, 10*time.Second, func() error { return ev.has(e[0], e[1], e[2], e[3]) })
		}
		testenv.WaitFor(t, 10*time.Second, online(w, st.online, st.reason))
		if st.online {
			if r := w.State().DefaultRoute; r == nil || r.Link != ns.Link || r.Gateway != "192.0.2.1" {
				t.Errorf("%s: default route = %+v, want via 192.0.2.1 on %s", st.name, r, ns.Link)
			}
		}
	}
	if n := testutil.ToFloat64(mustCollector(t, reg, "hostd_netcfg_link_changes_total", "link", ns.Link)); n < 6 {
		t.Errorf("link changes metric for %s = %v, want at least 6", ns.Link, n)
	}
	// A "link down" event may already have come with the carrier loss
	// above: wait for the state rather than for the event.
	testenv.WaitFor(t, 10*time.Second, func() error {
		links := w.State().Links
		if i := slices.IndexFunc(links, func(l netwatch.Link) bool { return l.Name == ns.Link }); i < 0 || links[i].AdminUp {
			return fmt.Errorf("state of %s = %+v, want admin down", ns.Link, links)
		}
		return nil
	})
}

// mustCollector returns the counter with the given label values (in
// label name order) from reg.
func mustCollector(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, lp := range m.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			if slices.Equal(vals, labels) {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestWatcherReconcilesDeclaredLinks(t *testing.T) {
	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	spec := netwatch.LinkSpec{
		Name:      ns.Link,
		State:     "up",
		MTU:       1400,
		Addresses: []string{"192.0.2.10/24", "2001:db8::10/64"},
		Routes:    []netwatch.RouteSpec{{To: "default", Via: "192.0.2.1"}, {To: "198.51.100.0/24", Via: "192.0.2.254", Metric: 10}},
	}
	w, _, reg := start(t, ns, netwatch.Options{Links: []netwatch.LinkSpec{spec}})

	matches := func() error {
		s := w.State()
		i := slices.IndexFunc(s.Links, func(l netwatch.Link) bool { return l.Name == ns.Link })
		if i < 0 {
			return fmt.Errorf("no link %s", ns.Link)
		}
		l := s.Links[i]
		if !l.AdminUp || l.MTU != 1400 || !slices.Contains(l.Addresses, "192.0.2.10/24") || !slices.Contains(l.Addresses, "2001:db8::10/64") {
			return fmt.Errorf("link = %+v, want up, mtu 1400, both addresses", l)
		}
		if s.DefaultRoute == nil || s.DefaultRoute.Gateway != "192.0.2.1" {
			return fmt.Errorf("default route = %+v, want via 192.0.2.1", s.DefaultRoute)
		}
		if len(s.Problems) > 0 {
			return fmt.Errorf("problems: %q", s.Problems)
		}
		return nil
	}
	testenv.WaitFor(t, 10*time.Second, matches)

	tamper := [][]string{
		{"addr", "del", "192.0.2.10/24", "dev", ns.Link}, // takes both routes with it
		{"link", "set", ns.Link, "mtu", "1500"},
		{"route", "del", "198.51.100.0/24"},
		{"link", "set", ns.Link, "down"},
	}
	for _, args := range tamper {
		before := testutil.ToFloat64(mustCollector(t, reg, "hostd_netcfg_reconcile_actions_total", ns.Link))
		ns.IP(t, args...)
		testenv.WaitFor(t, 10*time.Second, func() error {
			if got := testutil.ToFloat64(mustCollector(t, reg, "hostd_netcfg_reconcile_actions_total", ns.Link)); got <= before {
				return fmt.Errorf("nothing restored after ip %v", args)
			}
			return matches()
		})
	}
}

func TestWatcherConfiguresLinkThatAppearsLater(t *testing.T) {
	ns := testenv.NewNetNS(t)
	spec := netwatch.LinkSpec{Name: "late0", State: "up", MTU: 1300, Addresses: []string{"198.51.100.1/24"}}
	w, ev, _ := start(t, ns, netwatch.Options{Links: []netwatch.LinkSpec{spec}})
	testenv.WaitFor(t, 10*time.Second, func() error {
		if p := w.State().Problems; len(p) != 1 || !strings.Contains(p[0], "link late0: not found") {
			return fmt.Errorf("problems = %q, want one about late0", p)
		}
		return nil
	})
	// The link appears: it is configured as declared.
	ns.IP(t, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
	testenv.WaitFor(t, 10*time.Second, func() error { return ev.has("link", "added", "late0", "veth") })
	testenv.WaitFor(t, 10*time.Second, func() error {
		s := w.State()
		i := slices.IndexFunc(s.Links, func(l netwatch.Link) bool { return l.Name == "late0" })
		if i < 0 || !s.Links[i].AdminUp || s.Links[i].MTU != 1300 || !slices.Contains(s.Links[i].Addresses, "198.51.100.1/24") || len(s.Problems) != 0 {
			return fmt.Errorf("state = %+v, want late0 up, mtu 1300, 198.51.100.1/24, no problems", s)
		}
		return nil
	})
}

func TestWatcherProbe(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer probe.Close()

	ns := testenv.NewNetNS(t)
	ns.PeerIP(t, "link", "set", ns.PeerLink, "up")
	spec := netwatch.LinkSpec{Name: ns.Link, State: "up", Addresses: []string{"192.0.2.10/24"}, Routes: []netwatch.RouteSpec{{To: "default", Via: "192.0.2.1"}}}
	w, _, _ := start(t, ns, netwatch.Options{
		Links:         []netwatch.LinkSpec{spec},
		ProbeURL:      probe.URL,
		ProbeInterval: 20 * time.Millisecond,
	})
	testenv.WaitFor(t, 10*time.Second, online(w, false, "offline: connectivity probe failed: status 503"))
	status.Store(http.StatusNoContent)
	testenv.WaitFor(t, 10*time.Second, online(w, true, ""))
	if p := w.State().Probe; p == nil || !p.OK || p.URL != probe.URL {
		t.Errorf("probe = %+v, want ok for %s", p, probe.URL)
	}
	ns.PeerIP(t, "link", "set", ns.PeerLink, "down") // carrier lost
	testenv.WaitFor(t, 10*time.Second, online(w, false, netwatch.ReasonNoDefaultRoute))
}

func TestLinkSpecCheck(t *testing.T) {
	tests := []struct {
		name string
		spec netwatch.LinkSpec
		want []string // fields with problems
	}{
		{"ok", netwatch.LinkSpec{Name: "eth0", State: "up", MTU: 9000, Addresses: []string{"192.0.2.1/24"}, Routes: []netwatch.RouteSpec{{To: "default", Via: "192.0.2.254"}}}, nil},
		{"no name", netwatch.LinkSpec{}, []string{"name"}},
		{"long name", netwatch.LinkSpec{Name: "averyveryverylongname"}, []string{"name"}},
		{"bad state", netwatch.LinkSpec{Name: "eth0", State: "sideways"}, []string{"state"}},
		{"bad mtu", netwatch.LinkSpec{Name: "eth0", MTU: 20}, []string{"mtu"}},
		{"bad address", netwatch.LinkSpec{Name: "eth0", Addresses: []string{"192.0.2.1/24", "192.0.2.1"}}, []string{"addresses[1]"}},
		{"bad routes", netwatch.LinkSpec{Name: "eth0", Routes: []netwatch.RouteSpec{
			{To: "default"}, {To: "10.0.0.0/8", Via: "2001:db8::1"}, {To: "nowhere"}, {To: "10.0.0.0/8", Via: "x"}, {To: "10.0.0.0/8", Metric: -1},
		}}, []string{"routes[0]", "routes[1]", "routes[2]", "routes[3]", "routes[4]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range tc.spec.Check() {
				got = append(got, p.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems at %q, want %q (%v)", got, tc.want, tc.spec.Check())
			}
		})
	}
}
