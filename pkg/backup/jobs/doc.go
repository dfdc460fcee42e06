// Package jobs is the `backup` service of the hostd daemon: named backup
// jobs that run on systemd calendar schedules, apply retention (forget,
// then prune) and periodic checks, and report their state through status,
// metrics, readiness and the local API (GET /v1/backup/jobs,
// POST /v1/backup/run).
//
// It owns scheduling, the one-run-per-repository rule, the per-job state
// kept in the service's state directory, the password lookup through
// secret references, and the job's metrics. It does not own the backup
// engine (package backup and below: repository format, chunking,
// encryption, locks) nor the calendar syntax (internal/schedule).
package jobs
