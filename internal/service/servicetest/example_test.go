package servicetest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

// A reconnect loop under test: the fake clock decides when it retries,
// the Health recorder shows what it reported.
func Example() {
	clk := servicetest.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	health := &servicetest.Health{}
	env := service.Env{Clock: clk, Health: health}.WithDefaults()

	ctx := context.Background()
	go func() {
		b := service.Backoff{Min: time.Second, Clock: env.Clock}
		for i := 0; i < 2; i++ {
			env.Health.Degraded(errors.New("server unreachable"))
			_ = b.Wait(ctx)
		}
		env.Health.Ready()
	}()
	for range 2 {
		_ = clk.BlockUntil(ctx, 1)
		at, _ := clk.NextTimer()
		clk.Set(at)
	}
	r, _ := health.Wait(ctx, servicetest.IsReady)
	fmt.Println(r, clk.Now().Sub(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	fmt.Println(health.Counts())
	// Output:
	// ready 3s
	// 1 2
}
