package jobs

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/testenv"
)

// peers is a service.Peers whose netcfg readiness the test sets.
type peers struct {
	mu    sync.Mutex
	ready bool
	ch    chan struct{}
}

func newPeers() *peers { return &peers{ch: make(chan struct{})} }

func (p *peers) ServiceReady(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return name != "netcfg" || p.ready
}

func (p *peers) Changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

func (p *peers) set(ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready = ready
	close(p.ch)
	p.ch = make(chan struct{})
}

// TestRemoteRunWaitsForTheNetwork: a run to a remote repository waits
// while netcfg is not ready and goes ahead once it is; a local job does
// not wait.
func TestRemoteRunWaitsForTheNetwork(t *testing.T) {
	src := sourceTree(t, 2, 1024)
	pw := writeSecret(t, "pw")
	cfg := DefaultConfig()
	cfg.Enable = true
	remote := testJob("sftp://backup@127.0.0.1:1/srv/repo", src, pw)
	cfg.Jobs = map[string]Job{"remote": remote}
	h := newHarness(t, cfg, "")
	net := newPeers()
	h.svc.env.Peers = net
	if got := h.svc.Needs(); len(got) != 1 || got[0] != "netcfg" {
		t.Fatalf("Needs() = %v", got)
	}
	h.serve()
	h.idle()
	r, _, err := h.svc.byName["remote"].request()
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		if ev, _, _ := r.watch(); ev.Type != EventWaiting {
			return fmt.Errorf("run event %q, want waiting", ev.Type)
		}
		return nil
	})
	if !strings.Contains(h.logs.String(), "waiting for the network") {
		t.Errorf("no log line says the run waits for the network:\n%s", h.logs.String())
	}
	net.set(true)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not go ahead once the network was ready")
	}
	// Nothing listens on 127.0.0.1:1: the run went ahead and failed there.
	if r.result == nil || r.result.Result != ResultFailed || !strings.Contains(r.result.Error, "127.0.0.1:1") {
		t.Errorf("result = %+v, want a failure to reach 127.0.0.1:1", r.result)
	}
}
