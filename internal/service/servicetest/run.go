package servicetest

import (
	"context"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
)

// StopTimeout is how long Run waits for Serve to return once the test
// has ended.
const StopTimeout = 10 * time.Second

// Run runs s.Serve in a goroutine until the test ends, as the supervisor
// would. At the end it cancels Serve's context and waits for it to return:
// an error from Serve, or Serve not returning within StopTimeout, fails
// the test.
func Run(t testing.TB, s service.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Serve returned %v", s.Name(), err)
			}
		case <-time.After(StopTimeout):
			t.Errorf("%s: Serve did not return within %s of cancellation", s.Name(), StopTimeout)
		}
	})
}
