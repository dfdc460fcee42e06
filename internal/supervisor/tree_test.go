package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// scripted is a service whose runs follow a script: each run takes the
// next action ("ready", "panic", "error", "degraded"); after the script
// ends it stays ready.
type scripted struct {
	name   string
	h      service.Health
	script []string
	runs   atomic.Int32
	needs  []string
}

func (s *scripted) Name() string    { return s.name }
func (s *scripted) Needs() []string { return s.needs }
func (s *scripted) Status() service.Status {
	return service.Status{Summary: fmt.Sprintf("run %d", s.runs.Load())}
}

func (s *scripted) Serve(ctx context.Context) error {
	n := int(s.runs.Add(1)) - 1
	action := "ready"
	if n < len(s.script) {
		action = s.script[n]
	}
	switch action {
	case "panic":
		panic("boom")
	case "error":
		return errors.New("broken")
	case "degraded":
		s.h.Degraded(errors.New("half broken"))
	default:
		s.h.Ready()
	}
	<-ctx.Done()
	return nil
}

func newTree(t *testing.T) (*Tree, context.CancelFunc) {
	t.Helper()
	tr := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond, StopTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tr.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tr, cancel
}

func add(t *testing.T, tr *Tree, s *scripted) {
	t.Helper()
	if err := tr.Set(s.name, func(h service.Health) (service.Service, error) { s.h = h; return s, nil }); err != nil {
		t.Fatal(err)
	}
}

func waitState(t *testing.T, tr *Tree, name string, want State) UnitStatus {
	t.Helper()
	return waitUnit(t, tr, name, func(s UnitStatus) bool { return s.State == want })
}

func waitUnit(t *testing.T, tr *Tree, name string, ok func(UnitStatus) bool) UnitStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch := tr.Changes()
		for _, s := range tr.Status() {
			if s.Name == name && ok(s) {
				return s
			}
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("%s never reached the expected state: %+v", name, tr.Status())
		}
	}
}

func TestRestartsWithBackoffThenRecovers(t *testing.T) {
	cases := []struct {
		name    string
		script  []string
		lastErr string
	}{
		{"panics", []string{"panic", "panic", "panic"}, "panic: boom"},
		{"errors", []string{"error", "error", "error"}, "broken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTree(t)
			good := &scripted{name: "good"}
			bad := &scripted{name: "bad", script: tc.script}
			add(t, tr, good)
			add(t, tr, bad)
			st := waitState(t, tr, "bad", Ready)
			if st.Restarts != 3 || st.LastError != tc.lastErr {
				t.Errorf("bad = %+v, want 3 restarts and last error %q", st, tc.lastErr)
			}
			if g := waitState(t, tr, "good", Ready); g.Restarts != 0 || good.runs.Load() != 1 {
				t.Errorf("good was disturbed: %+v, %d runs", g, good.runs.Load())
			}
			if len(tr.NotReady()) != 0 {
				t.Errorf("not ready: %v", tr.NotReady())
			}
		})
	}
}

func TestBackoffDoublesAndCaps(t *testing.T) {
	tr := New(Options{BackoffMin: time.Second, BackoffMax: 5 * time.Second})
	u := tr.unit("x")
	r := &runner{u: u}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for failures, w := range want {
		u.failures = failures
		if got := r.backoff(); got != w {
			t.Errorf("backoff after %d failures = %s, want %s", failures, got, w)
		}
	}
}

func TestDegradedAndDependencies(t *testing.T) {
	tr, _ := newTree(t)
	dep := &scripted{name: "dep", script: []string{"degraded"}}
	user := &scripted{name: "user", needs: []string{"dep", "absent"}}
	add(t, tr, dep)
	add(t, tr, user)
	d := waitState(t, tr, "dep", Degraded)
	if d.LastError != "half broken" {
		t.Errorf("dep = %+v", d)
	}
	u := waitUnit(t, tr, "user", func(s UnitStatus) bool { return len(s.WaitingFor) > 0 })
	if u.State != Starting || len(u.WaitingFor) != 1 || u.WaitingFor[0] != "dep" || user.runs.Load() != 0 {
		t.Errorf("user = %+v (runs %d), want waiting for dep only", u, user.runs.Load())
	}
	dep.h.Ready()
	waitState(t, tr, "user", Ready)
}

func TestReplaceAndDisable(t *testing.T) {
	tr, _ := newTree(t)
	a := &scripted{name: "a"}
	b := &scripted{name: "b"}
	add(t, tr, a)
	add(t, tr, b)
	waitState(t, tr, "a", Ready)
	before := waitState(t, tr, "b", Ready)
	a2 := &scripted{name: "a"}
	add(t, tr, a2)
	waitState(t, tr, "a", Ready)
	if a2.runs.Load() != 1 {
		t.Errorf("new instance not started")
	}
	// The old instance's reports are ignored.
	a.h.Degraded(errors.New("stale"))
	if s := waitState(t, tr, "a", Ready); s.LastError != "" {
		t.Errorf("stale report applied: %+v", s)
	}
	if after := waitState(t, tr, "b", Ready); !after.Since.Equal(before.Since) || b.runs.Load() != 1 {
		t.Errorf("b was restarted by replacing a")
	}
	tr.Disable("a")
	waitState(t, tr, "a", Disabled)
	if tr.Service("a") != nil {
		t.Errorf("disabled service still reachable")
	}
}

func TestBuildErrorShowsStopped(t *testing.T) {
	tr, _ := newTree(t)
	err := tr.Set("x", func(service.Health) (service.Service, error) { return nil, errors.New("no key") })
	if err == nil {
		t.Fatal("no error")
	}
	s := waitState(t, tr, "x", Stopped)
	if s.LastError != "create service x: no key" {
		t.Errorf("x = %+v", s)
	}
	if tr.NotReady()["x"] == "" {
		t.Errorf("x not reported as not ready")
	}
}
