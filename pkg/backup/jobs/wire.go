package jobs

import (
	"time"

	"github.com/hostd/hostd/pkg/backup"
)

// The local API's wire types, shared by the daemon and `hostd backup`.

// JobList is the reply of GET /v1/backup/jobs and the service's status
// details.
type JobList struct {
	Jobs []JobStatus `json:"jobs"`
}

// JobStatus is one job's state.
type JobStatus struct {
	// Name is the job's name ("default" for the top-level shorthand).
	Name string `json:"name"`
	// Repository is the repository location (no secrets).
	Repository string `json:"repository"`
	// Schedule is the job's schedule in normalized form.
	Schedule string `json:"schedule"`
	// State is idle, waiting (for another job on the same repository) or
	// running.
	State string `json:"state"`
	// Phase is what a running job does: backup, retention or check.
	Phase string `json:"phase,omitempty"`
	// Progress of the running backup.
	Progress *backup.Progress `json:"progress,omitempty"`
	// LastRun is when the last run started.
	LastRun *time.Time `json:"last_run,omitempty"`
	// LastResult is success, partial, failed or interrupted.
	LastResult string `json:"last_result,omitempty"`
	// LastDurationSeconds is how long the last run took.
	LastDurationSeconds float64 `json:"last_duration_seconds,omitempty"`
	// LastSuccess is when a run last saved a snapshot.
	LastSuccess *time.Time `json:"last_success,omitempty"`
	// LastSnapshot is the ID of that snapshot.
	LastSnapshot string `json:"last_snapshot,omitempty"`
	// LastError is why the last run failed; empty after a success.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when it failed.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// BytesAdded is what the last successful run added to the repository.
	BytesAdded int64 `json:"bytes_added"`
	// Files is the number of files in the last snapshot.
	Files int64 `json:"files"`
	// FilesFailed is the number of files the last run could not read.
	FilesFailed int64 `json:"files_failed,omitempty"`
	// RepositorySize is the repository's size in bytes after the last run.
	RepositorySize int64 `json:"repository_size,omitempty"`
	// LastRetention is when forget and prune last ran successfully.
	LastRetention *time.Time `json:"last_retention,omitempty"`
	// LastCheck is when the repository was last checked successfully.
	LastCheck *time.Time `json:"last_check,omitempty"`
	// NextRun is when the job runs next; absent when it never will.
	NextRun *time.Time `json:"next_run,omitempty"`
	// Problem is why the job makes the service degraded, if it does.
	Problem string `json:"problem,omitempty"`
	// StateError is why the job's state file could not be saved (full or
	// read-only state directory); empty once a save succeeds. While set,
	// the job is a problem and the state shown is not on disk.
	StateError string `json:"state_error,omitempty"`
	// StateErrorAt is when the last save failed.
	StateErrorAt *time.Time `json:"state_error_at,omitempty"`
}

// RunRequest is the body of POST /v1/backup/run.
type RunRequest struct {
	// Job is the name of the job to run now.
	Job string `json:"job"`
}

// Event types of a run's progress stream.
const (
	EventStarted  = "started"  // a run started for this request
	EventJoined   = "joined"   // the job was already running; following that run
	EventWaiting  = "waiting"  // waiting for another job on the same repository
	EventProgress = "progress" // backup progress
	EventPhase    = "phase"    // the run moved on to retention or check
	EventDone     = "done"     // the run finished; see Result
)

// RunEvent is one JSON line of the reply to POST /v1/backup/run.
type RunEvent struct {
	// Type is one of the Event constants.
	Type string `json:"type"`
	// Job is the job's name.
	Job string `json:"job"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Phase is the run's current phase: backup, retention or check.
	Phase string `json:"phase,omitempty"`
	// Progress is set on progress events.
	Progress *backup.Progress `json:"progress,omitempty"`
	// Result is set on the done event.
	Result *RunResult `json:"result,omitempty"`
}

// RunResult is the outcome of one run.
type RunResult struct {
	// Result is success, partial, failed or interrupted.
	Result string `json:"result"`
	// Error says why the run failed or what went wrong after the backup
	// (retention, check).
	Error string `json:"error,omitempty"`
	// Summary is the backup's summary, when a backup ran.
	Summary *backup.BackupSummary `json:"summary,omitempty"`
	// DurationSeconds is how long the run took.
	DurationSeconds float64 `json:"duration_seconds"`
	// Retention says what retention did, when it ran.
	Retention string `json:"retention,omitempty"`
	// Check says what the check found, when it ran.
	Check string `json:"check,omitempty"`
}
