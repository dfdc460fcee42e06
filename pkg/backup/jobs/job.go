package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hostd/hostd/internal/schedule"
)

// Job states shown in JobStatus.State.
const (
	stateIdle    = "idle"
	stateWaiting = "waiting"
	stateRunning = "running"
)

// job is one configured backup job and its runtime state.
type job struct {
	s        *Service
	name     string
	cfg      Job
	log      *slog.Logger
	timer    schedule.Timer
	retain   *schedule.Schedule
	check    *schedule.Schedule // nil: no periodic check
	repoLock *repoLock
	trigger  chan struct{} // a requested run is pending; capacity 1

	mu     sync.Mutex
	st     state
	alive  bool // the job's loop runs and will take requests
	cur    *run // the pending or running run
	next   time.Time
	errors int64 // failed runs since start, for hostd_backup_errors_total
	runs   map[string]int64
	// saveErr is why the state could not be saved, "" once a save
	// succeeds; while set, the job has a problem and its loop retries.
	saveErr    string
	saveErrAt  time.Time
	saveErrors int64 // failed saves since start, for hostd_backup_state_save_errors_total
	// staleBase and stale cache staleAt: stale is resolved from the
	// schedule again only when the base (last success, or first seen)
	// changes.
	staleBase time.Time
	stale     time.Time
}

func newJob(s *Service, nj namedJob, host string) (*job, error) {
	sched, err := schedule.Parse(nj.Schedule)
	if err != nil {
		return nil, fmt.Errorf("job %s: schedule: %w", nj.Name, err)
	}
	retain, err := schedule.Parse(nj.Retention.Schedule)
	if err != nil {
		return nil, fmt.Errorf("job %s: retention schedule: %w", nj.Name, err)
	}
	j := &job{
		s:    s,
		name: nj.Name,
		cfg:  nj.Job,
		log:  s.log.With("job", nj.Name),
		timer: schedule.Timer{
			Schedule:        sched,
			RandomizedDelay: nj.RandomizedDelay,
			Persistent:      *nj.Persistent,
			Key:             host + "/backup/" + nj.Name,
		},
		retain:  retain,
		trigger: make(chan struct{}, 1),
		runs:    map[string]int64{},
	}
	if nj.Check != "" {
		if j.check, err = schedule.Parse(nj.Check); err != nil {
			return nil, fmt.Errorf("job %s: check schedule: %w", nj.Name, err)
		}
	}
	return j, nil
}

// loadState reads the job's saved state, recording when the job was
// first seen.
func (j *job) loadState() error {
	st, err := j.s.store.load(j.name)
	if errors.Is(err, errCorruptState) {
		// Only a damaged disk or a hand edit gets here (the file is
		// replaced atomically): keep it for inspection and start afresh
		// rather than failing the service over and over.
		aside := j.s.store.path(j.name) + ".corrupt"
		_ = os.Rename(j.s.store.path(j.name), aside)
		j.log.Error("job state unreadable; starting with an empty state", "err", err, "kept_as", aside)
		st, err = state{}, nil
	}
	if err != nil {
		return fmt.Errorf("job %s: %w", j.name, err)
	}
	j.mu.Lock()
	j.st = st
	j.mu.Unlock()
	if st.FirstSeen.IsZero() {
		j.mu.Lock()
		j.st.FirstSeen = j.s.clock.Now()
		j.mu.Unlock()
		// A state directory that cannot be written does not stop the
		// job: it runs, and shows the failure until a save succeeds.
		j.saveState()
	}
	return nil
}

// saveState writes the job's state to its file. A failure is a problem
// of the job: status, `hostd backup jobs` and the service's health show
// it, hostd_backup_state_save_errors_total counts it, and the job's loop
// tries again (at least every maxWait) until a save succeeds.
func (j *job) saveState() {
	j.mu.Lock()
	st := j.st
	j.mu.Unlock()
	err := j.s.store.save(j.name, st)
	now := j.s.clock.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.saveErrors++
		if err.Error() != j.saveErr {
			// Logged once per distinct error, not on every retry.
			j.log.Error("cannot save job state; the job stays degraded until a save succeeds", "err", err)
			defer j.s.healthChanged()
		}
		j.saveErr, j.saveErrAt = err.Error(), now
		return
	}
	if j.saveErr != "" {
		j.log.Info("job state saved again", "file", j.s.store.path(j.name))
		defer j.s.healthChanged()
	}
	j.saveErr, j.saveErrAt = "", time.Time{}
}

// saveFailing reports whether the last save of the state failed.
func (j *job) saveFailing() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.saveErr != ""
}

// nextRun is when the timer fires next, given the saved state, and
// whether a persistent timer missed an elapse since the last run.
func (j *job) nextRun(now time.Time) (next time.Time, missed bool) {
	j.mu.Lock()
	last := j.st.LastTrigger
	j.mu.Unlock()
	j.s.resolutions.Add(1)
	return j.timer.Next(last, now), j.timer.Missed(last, now)
}

// loop waits for the schedule or a request and runs the job, until ctx
// is done. The next run time is computed once per run, so a randomized
// delay added to a catch-up run stays put while the loop sleeps in
// steps of at most maxWait. The loop announces a change of the job's
// health (a run ended, a save failed or succeeded, the job became
// overdue), never recomputes the service's: that is one pass over
// every job, done by the service's refresher.
func (j *job) loop(ctx context.Context) {
	j.mu.Lock()
	j.alive = true
	j.mu.Unlock()
	defer j.stop()
	next, missed := j.plan()
	var overdue time.Time // the staleAt already announced as passed
	for ctx.Err() == nil {
		if j.saveFailing() {
			j.saveState()
		}
		now := j.s.clock.Now()
		if stale := j.staleAt(); !stale.IsZero() && now.After(stale) && !stale.Equal(overdue) {
			overdue = stale
			j.s.healthChanged()
		}
		if !next.IsZero() && !now.Before(next) {
			if missed {
				j.log.Info("running a scheduled backup that was missed while hostd was down or the job was busy")
			}
			j.execute(ctx, j.begin(true))
			next, missed = j.plan()
			continue
		}
		wait := maxWait
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		if stale := j.staleAt(); stale.After(now) {
			wait = min(wait, stale.Sub(now))
		}
		t := j.s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-j.trigger:
			t.Stop()
			j.execute(ctx, j.begin(false))
			next, missed = j.plan()
		case <-t.C():
		}
	}
}

// plan computes and publishes the next run.
func (j *job) plan() (next time.Time, missed bool) {
	next, missed = j.nextRun(j.s.clock.Now())
	j.mu.Lock()
	j.next = next
	j.mu.Unlock()
	return next, missed
}

// stop ends the loop: a request that was never started is answered.
func (j *job) stop() {
	j.mu.Lock()
	j.alive = false
	r := j.cur
	j.cur = nil
	j.mu.Unlock()
	select {
	case <-j.trigger:
	default:
	}
	if r != nil && !r.isDone() {
		r.finish(RunResult{Result: ResultInterrupted, Error: "hostd is stopping"})
	}
}

// request returns the run that satisfies a request to run now: the
// running or pending one, or a new one the loop will start. joined
// reports that the run was already under way.
func (j *job) request() (r *run, joined bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.alive {
		return nil, false, fmt.Errorf("job %s is not running: the backup service is stopped", j.name)
	}
	if j.cur != nil {
		return j.cur, true, nil
	}
	j.cur = newRun(j.name, j.s.clock.Now)
	select {
	case j.trigger <- struct{}{}:
	default:
	}
	return j.cur, false, nil
}

// begin returns the run to execute: a pending requested one, or a new
// scheduled one.
func (j *job) begin(scheduled bool) *run {
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.trigger:
	default:
	}
	if j.cur == nil {
		j.cur = newRun(j.name, j.s.clock.Now)
	}
	j.cur.scheduled = scheduled
	return j.cur
}

// staleAt is when the job becomes overdue: its last success (or, if it
// never succeeded, when it was first seen) plus twice its period. The
// schedule is resolved once per base, not on every call: status, health
// and the job's loop all ask.
func (j *job) staleAt() time.Time {
	j.mu.Lock()
	base := j.st.LastSuccess
	if base.IsZero() {
		base = j.st.FirstSeen
	}
	if base.Equal(j.staleBase) {
		stale := j.stale
		j.mu.Unlock()
		return stale
	}
	j.mu.Unlock()
	var stale time.Time
	if !base.IsZero() {
		j.s.resolutions.Add(1)
		if p, ok := stalePeriod(j.timer.Schedule, base, j.cfg.RandomizedDelay); ok {
			stale = base.Add(p)
		}
	}
	j.mu.Lock()
	j.staleBase, j.stale = base, stale
	j.mu.Unlock()
	return stale
}

// problem says why this job makes the service degraded, or "": the
// job's own problem, and a failure to save its state.
func (j *job) problem(now time.Time) string {
	p := j.runProblem(now)
	j.mu.Lock()
	saveErr := j.saveErr
	j.mu.Unlock()
	switch {
	case saveErr == "":
		return p
	case p == "":
		return fmt.Sprintf("job %s: %s", j.name, saveErr)
	}
	return fmt.Sprintf("%s; job %s: %s", p, j.name, saveErr)
}

// runProblem says what is wrong with the job's runs: the last one
// failed, retention or check failed, or it is overdue.
func (j *job) runProblem(now time.Time) string {
	stale := j.staleAt()
	j.mu.Lock()
	st := j.st
	j.mu.Unlock()
	if st.LastResult == ResultFailed {
		return fmt.Sprintf("job %s: %s", j.name, st.LastError)
	}
	if st.MaintenanceError != "" {
		return fmt.Sprintf("job %s: %s", j.name, st.MaintenanceError)
	}
	if stale.IsZero() || !now.After(stale) {
		return ""
	}
	if st.LastSuccess.IsZero() {
		return fmt.Sprintf("job %s: no successful backup since %s, more than twice its schedule's period", j.name, st.FirstSeen.Format(time.RFC3339))
	}
	return fmt.Sprintf("job %s: last successful backup %s ago (%s), more than twice its schedule's period",
		j.name, roundAgo(now.Sub(st.LastSuccess)), st.LastSuccess.Format(time.RFC3339))
}

// status snapshots the job for the API and status.
func (j *job) status() JobStatus {
	now := j.s.clock.Now()
	p := j.problem(now)
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.st
	out := JobStatus{
		Name:                j.name,
		Repository:          redactURL(j.cfg.Repository),
		Schedule:            j.timer.Schedule.String(),
		State:               stateIdle,
		LastResult:          st.LastResult,
		LastDurationSeconds: st.LastDuration.Seconds(),
		LastSnapshot:        st.LastSnapshot,
		LastError:           st.LastError,
		BytesAdded:          st.BytesAdded,
		Files:               st.Files,
		FilesFailed:         st.FilesFailed,
		RepositorySize:      st.RepositorySize,
		Problem:             p,
		LastRun:             timePtr(st.LastStart),
		LastSuccess:         timePtr(st.LastSuccess),
		LastErrorAt:         timePtr(st.LastErrorAt),
		LastRetention:       timePtr(st.LastRetention),
		LastCheck:           timePtr(st.LastCheck),
		NextRun:             timePtr(j.next),
		StateError:          j.saveErr,
		StateErrorAt:        timePtr(j.saveErrAt),
	}
	if out.Repository == "(unparsable URL)" {
		out.Repository = j.cfg.Repository
	}
	if r := j.cur; r != nil {
		out.State, out.Phase, out.Progress = r.view()
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// repoLock lets one job at a time use a repository.
type repoLock struct {
	ch chan struct{}

	mu     sync.Mutex
	holder string
}

func newRepoLock() *repoLock { return &repoLock{ch: make(chan struct{}, 1)} }

// tryAcquire takes the lock if it is free; else it returns the holder.
func (l *repoLock) tryAcquire(name string) (bool, string) {
	select {
	case l.ch <- struct{}{}:
		l.mu.Lock()
		l.holder = name
		l.mu.Unlock()
		return true, ""
	default:
		l.mu.Lock()
		defer l.mu.Unlock()
		return false, l.holder
	}
}

// acquire waits for the lock or ctx.
func (l *repoLock) acquire(ctx context.Context, name string) error {
	select {
	case l.ch <- struct{}{}:
		l.mu.Lock()
		l.holder = name
		l.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *repoLock) release() {
	l.mu.Lock()
	l.holder = ""
	l.mu.Unlock()
	<-l.ch
}
