package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
)

// Results of a run, as shown in status and `hostd backup jobs`.
const (
	ResultSuccess     = "success"     // snapshot saved, every file read
	ResultPartial     = "partial"     // snapshot saved, some files unreadable
	ResultFailed      = "failed"      // no snapshot
	ResultInterrupted = "interrupted" // stopped by shutdown; packs kept for the next run
)

// state is what a job remembers across restarts, in <state>/jobs/<name>.json.
// It holds no secret.
type state struct {
	// FirstSeen is when hostd first ran with this job, for judging a job
	// that never succeeded.
	FirstSeen time.Time `json:"first_seen"`
	// LastStart is when the last run started.
	LastStart time.Time `json:"last_start,omitzero"`
	// LastTrigger is when the last run that was not interrupted started:
	// a persistent timer catches up with elapses missed since.
	LastTrigger time.Time `json:"last_trigger,omitzero"`
	// LastEnd is when it ended.
	LastEnd time.Time `json:"last_end,omitzero"`
	// LastResult is one of the Result constants.
	LastResult string `json:"last_result,omitempty"`
	// LastError is the error of the last run that failed, "" after a success.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastSuccess is when the last run that saved a snapshot ended.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastDuration is how long the last finished run took.
	LastDuration time.Duration `json:"last_duration_ns,omitempty"`
	// LastSnapshot is the ID of the last snapshot saved.
	LastSnapshot string `json:"last_snapshot,omitempty"`
	// BytesAdded is what the last successful run added to the repository.
	BytesAdded int64 `json:"bytes_added"`
	// Files is the number of files in the last snapshot.
	Files int64 `json:"files"`
	// FilesFailed counts files the last run could not read.
	FilesFailed int64 `json:"files_failed,omitempty"`
	// LastRetention is when forget and prune last succeeded.
	LastRetention time.Time `json:"last_retention,omitzero"`
	// MaintenanceError is why the last retention or check failed; it
	// keeps the job degraded until they next succeed.
	MaintenanceError string `json:"maintenance_error,omitempty"`
	// KeyName is the key file that last opened the job's repository:
	// the next run tries it first (backup.OpenOptions.KeyHint), so key
	// files planted in the storage cannot spend the budget of key
	// derivations before it.
	KeyName string `json:"key_name,omitempty"`
	// LastCheck is when the last check succeeded.
	LastCheck time.Time `json:"last_check,omitzero"`
	// RepositorySize is the repository's size after the last run.
	RepositorySize int64 `json:"repository_size,omitempty"`
}

// stateLimit caps the size of a job state file; a real one is under 1 KiB.
const stateLimit = 64 << 10

// errCorruptState is wrapped by load for a state file that does not decode.
var errCorruptState = errors.New("corrupt job state")

// stateStore reads and writes job states in one directory.
type stateStore struct {
	dir string
}

func (s stateStore) path(job string) string { return filepath.Join(s.dir, job+".json") }

// load returns the saved state of job; a missing file is an empty state.
func (s stateStore) load(job string) (state, error) {
	var st state
	data, err := safefile.Read(s.path(job), stateLimit)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if errors.Is(err, safefile.ErrNotRegular) || errors.Is(err, safefile.ErrTooLarge) {
		return state{}, fmt.Errorf("%w: %v", errCorruptState, err)
	}
	if err != nil {
		return st, fmt.Errorf("read job state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return state{}, fmt.Errorf("%w %s: %v", errCorruptState, s.path(job), err)
	}
	return st, nil
}

// save writes the state atomically: a crash leaves the old or the new
// file, never a torn one. Its errors name the state file.
func (s stateStore) save(job string, st state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save job state %s: encode: %w", s.path(job), err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("save job state %s: create state directory: %w", s.path(job), err)
	}
	if err := atomicfile.WriteFile(s.path(job), append(data, '\n'), 0o600); err != nil {
		// The system's error without the temporary file's random name,
		// so that retries give the same message (logged once, a stable
		// health reason): "save job state /x/home.json: no space left on
		// device".
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("save job state %s: %w", s.path(job), pe.Err)
		}
		return fmt.Errorf("save job state %s: %w", s.path(job), err)
	}
	return nil
}
