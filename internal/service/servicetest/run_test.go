package servicetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

// waiter is a service that logs once, then waits until it is stopped.
type waiter struct {
	logs    *servicetest.Logs
	started chan struct{}
	stopped chan struct{}
}

func (w *waiter) Name() string { return "waiter" }

func (w *waiter) Serve(ctx context.Context) error {
	w.logs.Logger(w.Name()).Info("serving")
	close(w.started)
	<-ctx.Done()
	close(w.stopped)
	return nil
}

func (w *waiter) Status() service.Status { return service.Status{} }

func TestRunStopsAtTheEndOfTheTest(t *testing.T) {
	w := &waiter{logs: &servicetest.Logs{}, started: make(chan struct{}), stopped: make(chan struct{})}
	t.Run("serve", func(t *testing.T) {
		servicetest.Run(t, w)
		<-w.started
	})
	select {
	case <-w.stopped:
	default:
		t.Fatal("Serve still runs after the test that ran it ended")
	}
	if got := w.logs.String(); !strings.Contains(got, "msg=serving service=waiter") {
		t.Errorf("logs = %q", got)
	}
}
