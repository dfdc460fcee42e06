// Package service defines the shape every hostd service has, and holds,
// once, what every service needs:
//
//   - the Service interface the supervisor runs, the optional interfaces
//     for dependencies and routes, and the Health reporter a service
//     signals readiness through;
//   - Env, what each service is constructed with, and Env.WithDefaults,
//     which fills in what a caller left unset;
//   - Clock (RealClock; servicetest.FakeClock in tests), with Sleep and
//     SleepUntil, for everything that depends on time;
//   - Backoff, the exponential wait between retries, and Permanent, the
//     error that stops a service for good instead;
//   - ScheduleTimer and ParseSchedule, systemd-timer scheduling;
//   - ByteSize, the config type for sizes, and FormatBytes, the one
//     formatter of byte counts for people.
//
// Running, restarting and reporting on services is the supervisor's job
// (internal/supervisor), and each service's logic lives in its own
// package under pkg/. The fixtures tests share are in servicetest (fake
// clock, Health recorder) and internal/daemon/daemontest (an in-process
// daemon).
package service
