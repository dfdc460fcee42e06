// Package backup is the Go API of hostd's backup engine, called by the CLI
// (hostd backup ...) and by the scheduled jobs of the daemon
// (pkg/backup/jobs): Init, Open, and on an open Repository Backup,
// Snapshots, Ls, Diff, Dump, Restore, Check, Forget, Prune, Stats, key
// management and lock breaking. Each operation takes the repository lock
// it needs (shared for backup and restore, exclusive for forget and
// prune).
//
// The format lives in package repository, the pipeline stages in
// archiver, restorer, checker, forget and pattern; this package only
// composes them. It owns no schedule, config section or daemon wiring.
package backup
