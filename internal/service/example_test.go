package service_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
)

func ExampleEnv_WithDefaults() {
	// A constructor fills in what it was not given, once.
	env := service.Env{StateDir: "/var/lib/hostd/containers"}.WithDefaults()
	fmt.Println(env.StateDir)
	fmt.Printf("%T %T\n", env.Clock, env.Health)
	// Output:
	// /var/lib/hostd/containers
	// service.RealClock service.NopHealth
}

func ExampleBackoff() {
	// A reconnect loop: 1s, 2s, 4s, ... up to a minute; Reset once
	// connected.
	b := service.Backoff{Min: time.Second, Max: time.Minute}
	var waits []time.Duration
	for range 8 {
		waits = append(waits, b.Next())
	}
	fmt.Println(waits)
	b.Reset()
	fmt.Println(b.Next())
	// Output:
	// [1s 2s 4s 8s 16s 32s 1m0s 1m0s]
	// 1s
}

func ExampleSleepUntil() {
	clk := servicetest.NewFakeClock(time.Date(2025, 6, 1, 1, 0, 0, 0, time.UTC))
	sched, err := service.ParseSchedule("daily")
	if err != nil {
		panic(err)
	}
	timer := service.ScheduleTimer{Schedule: sched, Persistent: true}
	next := timer.Next(time.Time{}, clk.Now())
	done := make(chan error)
	go func() { done <- service.SleepUntil(context.Background(), clk, next, time.Minute) }()
	for clk.Now().Before(next) {
		_ = clk.BlockUntil(context.Background(), 1)
		clk.Advance(time.Minute)
	}
	fmt.Println(<-done, clk.Now().Format(time.DateTime))
	// Output:
	// <nil> 2025-06-02 00:00:00
}

func ExampleParseByteSize() {
	for _, s := range []string{"512MiB", "1.5 GB", "4096"} {
		b, err := service.ParseByteSize(s)
		if err != nil {
			panic(err)
		}
		fmt.Println(b.Bytes(), b, service.FormatBytes(b.Bytes()))
	}
	// Output:
	// 536870912 512MiB 512.0 MiB
	// 1610612736 1536MiB 1.5 GiB
	// 4096 4KiB 4.0 KiB
}

func ExampleFormatBytes() {
	fmt.Println(service.FormatBytes(900), service.FormatBytes(3<<29))
	// Output: 900 B 1.5 GiB
}
