// Command soakmon is the measuring half of bench/soak/run.sh.
//
//	soakmon sample -out FILE -until UNIX -hostd PID -http ADDR \
//	    [-daemon NAME=PID ...] [-transient-dir DIR] [-interval 2s]
//	    every interval until UNIX: polls hostd's /readyz, reads
//	    go_goroutines and the Go memory figures that its metrics service
//	    stored (a PromQL query, so that observing runs no collector), counts
//	    /proc/PID/fd, and reads the resident set and CPU time of hostd and
//	    of every daemon hostd replaces (and of the process trees whose
//	    pids are in DIR/*.pid: restic, docker system prune); one JSON
//	    line per sample.
//
//	soakmon report -samples FILE -load-start UNIX -load-end UNIX ...
//	    reads the samples and prints hostd beside the daemons it replaces
//	    (idle, mean and peak RSS, CPU, ratios), then applies the soak's
//	    checks (readiness, growth of goroutines, fds and RSS after
//	    warm-up, lost backups) and exits 1 naming each one that failed.
package main
