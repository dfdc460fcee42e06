// Package supervisor runs hostd's services as a suture tree: one root with
// a child per service. It owns each service's lifecycle state (starting,
// ready, degraded, backoff, stopped, disabled), restart counting with
// exponential backoff, panic recovery, start order by declared
// dependencies, replacing one service without touching the others, and the
// per-service state metrics.
//
// It does not know what any service does; services reach it only through
// the service.Health handed to them.
package supervisor
