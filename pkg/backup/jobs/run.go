package jobs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

// Phases of a run.
const (
	phaseBackup    = "backup"
	phaseRetention = "retention"
	phaseCheck     = "check"
)

// run is one execution of a job, followed by any number of API clients.
type run struct {
	job       string
	now       func() time.Time
	scheduled bool

	mu       sync.Mutex
	seq      int // bumped on every change
	state    string
	phase    string
	progress *backup.Progress
	last     RunEvent      // the latest event, for followers
	changed  chan struct{} // closed and replaced on every change
	result   *RunResult
	done     chan struct{}
}

func newRun(job string, now func() time.Time) *run {
	return &run{job: job, now: now, state: stateRunning, changed: make(chan struct{}), done: make(chan struct{})}
}

// emit records an event and wakes the followers.
func (r *run) emit(ev RunEvent, update func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if update != nil {
		update()
	}
	ev.Job, ev.Time = r.job, r.now()
	if ev.Phase == "" {
		ev.Phase = r.phase
	}
	r.last = ev
	r.seq++
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *run) setPhase(phase string) {
	r.emit(RunEvent{Type: EventPhase, Phase: phase}, func() { r.state, r.phase = stateRunning, phase })
}

func (r *run) setProgress(p backup.Progress) {
	r.emit(RunEvent{Type: EventProgress, Progress: &p}, func() { r.progress = &p })
}

// finish records the result; followers get the done event.
func (r *run) finish(res RunResult) {
	r.emit(RunEvent{Type: EventDone, Result: &res}, func() { r.result = &res })
	close(r.done)
}

func (r *run) isDone() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// view returns the state, phase and progress for status.
func (r *run) view() (state, phase string, progress *backup.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.phase, r.progress
}

// watch returns the latest event, its sequence number and a channel
// closed at the next change.
func (r *run) watch() (RunEvent, int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.seq, r.changed
}

// execute runs r to its end: it waits for the repository, backs up,
// applies retention and checks when due, and records the outcome.
func (j *job) execute(ctx context.Context, r *run) {
	start := j.s.clock.Now()
	if ok, holder := j.repoLock.tryAcquire(j.name); !ok {
		j.log.Info("waiting for another job on the same repository", "running", holder)
		r.emit(RunEvent{Type: EventWaiting}, func() { r.state = stateWaiting })
		if err := j.repoLock.acquire(ctx, j.name); err != nil {
			j.endRun(r, RunResult{Result: ResultInterrupted, Error: "hostd stopped while waiting for the repository"}, start, false)
			return
		}
	}
	defer j.repoLock.release()
	if peers := j.s.env.Peers; peers != nil && isRemote(j.cfg.Repository) && !peers.ServiceReady("netcfg") {
		j.log.Info("waiting for the network before backing up to a remote repository")
		r.emit(RunEvent{Type: EventWaiting}, func() { r.state = stateWaiting })
		if err := service.WaitReady(ctx, peers, "netcfg"); err != nil {
			j.endRun(r, RunResult{Result: ResultInterrupted, Error: "hostd stopped while waiting for the network"}, start, false)
			return
		}
	}
	start = j.s.clock.Now()
	j.mu.Lock()
	j.st.LastStart = start
	j.mu.Unlock()
	j.log.Info("backup started", "scheduled", r.scheduled)
	restore := j.s.limitMemory()
	res := j.perform(ctx, r)
	restore()
	j.s.releaseMemory()
	j.endRun(r, res, start, true)
}

// endRun records a finished run in the state, the metrics and the
// health, and answers its followers.
func (j *job) endRun(r *run, res RunResult, start time.Time, started bool) {
	end := j.s.clock.Now()
	res.DurationSeconds = end.Sub(start).Seconds()
	j.mu.Lock()
	st := &j.st
	j.runs[res.Result]++
	if started {
		st.LastEnd = end
		st.LastDuration = end.Sub(start)
		if res.Result != ResultInterrupted {
			st.LastTrigger = start
		}
		st.LastResult = res.Result
	}
	switch res.Result {
	case ResultSuccess, ResultPartial:
		st.LastSuccess = end
		st.LastError, st.LastErrorAt = "", time.Time{}
		if sum := res.Summary; sum != nil {
			st.LastSnapshot = sum.SnapshotID
			st.BytesAdded = sum.BytesAdded
			st.Files = int64(sum.FilesNew + sum.FilesChanged + sum.FilesUnmodified)
			st.FilesFailed = int64(sum.Errors)
		}
	case ResultFailed:
		j.errors++
		st.LastError, st.LastErrorAt = res.Error, end
	}
	if j.cur == r {
		j.cur = nil
	}
	j.mu.Unlock()
	j.saveState()
	attrs := []any{"result", res.Result, "duration", end.Sub(start).Round(time.Millisecond)}
	if sum := res.Summary; sum != nil {
		attrs = append(attrs, "snapshot", sum.SnapshotID, "files", sum.FilesNew+sum.FilesChanged+sum.FilesUnmodified,
			"bytes_added", sum.BytesAdded, "unreadable", sum.Errors)
	}
	switch res.Result {
	case ResultFailed:
		j.log.Error("backup failed", append(attrs, "err", res.Error)...)
	case ResultInterrupted:
		j.log.Warn("backup interrupted; the data saved so far is reused by the next run", attrs...)
	default:
		if res.Error != "" {
			attrs = append(attrs, "warning", res.Error)
		}
		j.log.Info("backup finished", attrs...)
	}
	// Announced before the run's followers hear of its end, so that
	// whoever waits for the run and then for the health sees both.
	j.s.healthChanged()
	r.finish(res)
}

// perform does the work of one run.
func (j *job) perform(ctx context.Context, r *run) RunResult {
	r.setPhase(phaseBackup)
	fail := func(err error) RunResult {
		if ctx.Err() != nil {
			return RunResult{Result: ResultInterrupted, Error: err.Error()}
		}
		return RunResult{Result: ResultFailed, Error: err.Error()}
	}
	repo, err := j.open(ctx)
	if err != nil {
		return fail(err)
	}
	defer repo.Close()

	tags := append([]string{"job=" + j.name}, j.cfg.Tags...)
	sum, err := repo.Backup(ctx, backup.BackupOptions{
		Paths:         j.cfg.Paths,
		Excludes:      j.cfg.Exclude,
		ExcludeCaches: j.cfg.ExcludeCaches,
		OneFileSystem: j.cfg.OneFileSystem,
		Tags:          tags,
		Progress:      r.setProgress,
		// Followers of `hostd backup run` see a live view.
		ProgressInterval: 250 * time.Millisecond,
		Warn: func(path string, err error) {
			j.log.Warn("cannot back up", "path", path, "err", err)
		},
	})
	if err != nil {
		res := fail(fmt.Errorf("back up to %s: %w", redactURL(j.cfg.Repository), err))
		res.Summary = sum
		return res
	}
	res := RunResult{Result: ResultSuccess, Summary: sum}
	if sum.Errors > 0 {
		res.Result = ResultPartial
		res.Error = fmt.Sprintf("%d files or directories could not be read", sum.Errors)
	}
	var problems []error
	retained, err := j.maybeRetain(ctx, r, repo, &res)
	if err != nil {
		problems = append(problems, err)
	}
	checked, cerr := j.maybeCheck(ctx, r, repo, &res)
	if cerr != nil {
		problems = append(problems, cerr)
	}
	if retained || checked {
		// Retention and check problems outlast the run: they keep the
		// job degraded until they succeed again.
		j.mu.Lock()
		j.st.MaintenanceError = ""
		if len(problems) > 0 {
			j.st.MaintenanceError = errors.Join(problems...).Error()
		}
		j.mu.Unlock()
	}
	if st, err := repo.Stats(ctx); err == nil {
		j.mu.Lock()
		j.st.RepositorySize = st.SizeOnDisk
		j.mu.Unlock()
	} else if ctx.Err() == nil {
		j.log.Warn("cannot read the repository size", "err", err)
	}
	if len(problems) > 0 {
		if res.Error != "" {
			problems = append([]error{errors.New(res.Error)}, problems...)
		}
		res.Error = errors.Join(problems...).Error()
	}
	return res
}

// open resolves the password and opens the repository, creating it
// when the job says init and it does not exist. The key that opened it
// last time is used again if the password, the key file and the
// repository are still the same (keyCache); else the key is derived from
// the password.
func (j *job) open(ctx context.Context) (*backup.Repository, error) {
	pw, err := j.s.env.Secrets.Resolve(ctx, j.cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("read the repository password: %w", err)
	}
	defer clear(pw)
	where := redactURL(j.cfg.Repository)
	j.mu.Lock()
	hint := j.st.KeyName
	j.mu.Unlock()
	opts := backup.OpenOptions{Logger: j.log, Now: j.s.clock.Now, CacheDir: j.s.cacheDir, KeyHint: hint, Backend: j.cfg.backendOptions(j.s.env.Secrets)}
	if key, ok := j.s.keys.get(j.cfg.Repository, hint, pw); ok {
		repo, err := backup.OpenUnlocked(ctx, j.cfg.Repository, key, opts)
		if err == nil {
			return repo, nil
		}
		if ctx.Err() != nil {
			return nil, openError(where, err)
		}
		// The key file is gone, the repository was created anew, or the
		// storage failed: the password decides, as without the key.
		j.s.keys.drop(j.cfg.Repository, hint, pw)
		j.log.Debug("the remembered key did not open the repository; deriving it from the password", "err", err)
	}
	repo, err := backup.Open(ctx, j.cfg.Repository, pw, opts)
	if err == nil || errors.Is(err, backup.ErrWrongPassword) {
		j.s.derived()
	}
	switch {
	case err == nil:
		j.rememberKey(repo)
		j.s.keys.put(j.cfg.Repository, pw, repo.UnlockedKey())
		return repo, nil
	case errors.Is(err, backup.ErrWrongPassword):
		return nil, fmt.Errorf("open repository %s: wrong password (from %s)", where, j.cfg.Password)
	case !errors.Is(err, backup.ErrNotRepository):
		return nil, openError(where, err)
	case !j.cfg.Init:
		return nil, fmt.Errorf("open repository %s: no repository there; set init: true on the job to create it, or run hostd backup init", where)
	}
	iopts := j.s.initOpts
	iopts.Compression = j.cfg.Compression
	iopts.Backend = j.cfg.backendOptions(j.s.env.Secrets)
	key, err := backup.InitUnlocked(ctx, j.cfg.Repository, pw, iopts)
	if err != nil {
		return nil, fmt.Errorf("create repository %s: %w", where, err)
	}
	j.s.derived()
	j.log.Info("created repository", "repository", where)
	// Opened with the key the init unlocked: no second derivation.
	repo, err = backup.OpenUnlocked(ctx, j.cfg.Repository, key, opts)
	if err != nil {
		return nil, openError(where, err)
	}
	j.rememberKey(repo)
	j.s.keys.put(j.cfg.Repository, pw, key)
	return repo, nil
}

// derived counts a key derivation and returns its memory to the system
// before the run goes on: the 32 MiB of argon2id are garbage once the key
// is unlocked, but their pages would stay resident under the engine's
// buffers (which live outside the heap) until the run ends.
func (s *Service) derived() {
	s.keyDerivations.Add(1)
	debug.FreeOSMemory()
}

// rememberKey records the key file that opened the repository, saved
// with the state at the end of the run.
func (j *job) rememberKey(repo *backup.Repository) {
	j.mu.Lock()
	j.st.KeyName = repo.KeyInUse()
	j.mu.Unlock()
}

// due reports whether a task on sched that last ran at last is due now:
// it never ran, or an elapse has passed since.
func due(sched interface{ Next(time.Time) time.Time }, last, now time.Time) bool {
	if last.IsZero() {
		return true
	}
	n := sched.Next(last)
	return !n.IsZero() && !n.After(now)
}

// MemoryBudget is how much a run may add to the daemon's memory: while
// jobs run, the daemon's soft memory limit is what it held when the
// first started plus this (env.LimitMemory). The engine keeps about
// this much live at its peak (pack and compression buffers, the index,
// a key derivation on the run that creates the repository); above it
// the collector runs more often rather than letting the heap grow.
const MemoryBudget = 40 << 20

// limitMemory bounds the heap for a run (env.LimitMemory); the returned
// function ends the bound. Outside the daemon it does nothing.
func (s *Service) limitMemory() (restore func()) {
	if f := s.env.LimitMemory; f != nil && s.memoryBudget > 0 {
		return f(s.memoryBudget)
	}
	return func() {}
}

// releaseMemory gives the memory of a finished run back to the system.
// A run allocates far more than hostd needs when idle: the key
// derivation (argon2id, 32 MiB by default), compression windows, pack
// buffers, the repository's index, and the engine's code. Once the
// repository is closed the heap part is garbage, but the collector's
// target still reflects the run's peak, so without help the next
// collection (and the scavenger returning pages after it) comes minutes
// later and RSS stays near the peak meanwhile. A forced collection that
// returns free pages at once costs a few milliseconds, once per run; in
// the daemon, env.ReleaseMemory also releases the executable's pages.
func (s *Service) releaseMemory() {
	if f := s.env.ReleaseMemory; f != nil {
		f()
		return
	}
	debug.FreeOSMemory()
}

// openError names the repository in an error of opening it, once: the
// repository layer names it already in most of its errors (a damaged
// config, a missing key), the backends in some.
func openError(where string, err error) error {
	if strings.Contains(err.Error(), "open repository ") {
		return err
	}
	return fmt.Errorf("open repository %s: %w", where, err)
}
