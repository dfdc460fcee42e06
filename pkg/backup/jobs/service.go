package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostd/hostd/internal/schedule"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

// Name is the service's config section name.
const Name = "backup"

// maxWait bounds one sleep of a job's loop, so a wall clock that jumps
// (suspend, NTP) delays a run by at most this much.
const maxWait = time.Minute

// Service runs the configured backup jobs on their schedules.
type Service struct {
	env    service.Env
	log    *slog.Logger
	clock  service.Clock
	store  stateStore
	jobs   []*job // sorted by name
	byName map[string]*job
	// initOpts are used when a job creates its repository; tests make the
	// key derivation cheap.
	initOpts backup.InitOptions
	// cacheDir holds the engine's file caches.
	cacheDir string
	// keys are the repository keys the jobs unlocked; keyDerivations
	// counts the opens that derived one from a password.
	keys           *keyCache
	keyDerivations atomic.Int64
	// memoryBudget is what a run may add to the daemon's memory
	// (env.LimitMemory); tests change it.
	memoryBudget int64

	// Health is computed by one goroutine (refreshLoop) when a job says
	// its problem may have changed (healthChanged): each change costs
	// one pass over the jobs at most, and changes that come while a
	// pass runs share the next one.
	healthKick chan struct{} // capacity 1
	healthGen  atomic.Int64  // changes announced
	healthDone atomic.Int64  // changes reflected in the last report
	healthMu   sync.Mutex
	lastHealth string // last reason reported, "" = ready
	reported   bool

	// resolutions counts schedule resolutions (when a job becomes
	// overdue, when it runs next): tests check they grow with the
	// number of jobs, not its square.
	resolutions atomic.Int64
}

var (
	_ service.Service  = (*Service)(nil)
	_ service.LocalAPI = (*Service)(nil)
)

// New builds the service from a validated config. It starts nothing.
func New(env service.Env, cfg Config) (*Service, error) {
	env = env.WithDefaults()
	if env.Secrets == nil {
		return nil, errors.New("backup service: no secret resolver")
	}
	if env.StateDir == "" {
		return nil, errors.New("backup service: no state directory")
	}
	s := &Service{
		env:          env,
		log:          env.Logger,
		clock:        env.Clock,
		store:        stateStore{dir: filepath.Join(env.StateDir, "jobs")},
		byName:       map[string]*job{},
		cacheDir:     filepath.Join(env.StateDir, "cache"),
		healthKick:   make(chan struct{}, 1),
		keys:         newKeyCache(),
		memoryBudget: MemoryBudget,
	}
	host := machineID()
	locks := map[string]*repoLock{}
	for _, nj := range cfg.jobs() {
		j, err := newJob(s, nj, host)
		if err != nil {
			return nil, err
		}
		key := repositoryKey(nj.Repository)
		if locks[key] == nil {
			locks[key] = newRepoLock()
		}
		j.repoLock = locks[key]
		s.jobs = append(s.jobs, j)
		s.byName[j.name] = j
	}
	if len(s.jobs) == 0 {
		return nil, errors.New("backup service: no jobs configured")
	}
	if err := env.Metrics.Register(&collector{s: s}); err != nil {
		return nil, fmt.Errorf("register backup metrics: %w", err)
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return Name }

// Serve runs every job's schedule until ctx is done. A run in progress
// when ctx ends is interrupted: the engine keeps the data packed so far
// for the next run.
func (s *Service) Serve(ctx context.Context) error {
	for _, j := range s.jobs {
		if err := j.loadState(); err != nil {
			return err
		}
	}
	// A restarted Serve reports its health afresh: the supervisor waits
	// for it.
	s.healthMu.Lock()
	s.reported = false
	s.healthMu.Unlock()
	s.healthDone.Store(s.healthGen.Load())
	s.refreshHealth(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.refreshLoop(ctx)
	}()
	for _, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.loop(ctx)
		}()
	}
	wg.Wait()
	s.keys.clear()
	return nil
}

// Status implements service.Service.
func (s *Service) Status() service.Status {
	list := s.list()
	parts := make([]string, 0, len(list.Jobs))
	now := s.clock.Now()
	for _, st := range list.Jobs {
		parts = append(parts, summarize(st, now))
	}
	return service.Status{Summary: strings.Join(parts, "; "), Details: list}
}

// summarize is one job's part of the status line.
func summarize(st JobStatus, now time.Time) string {
	var b strings.Builder
	b.WriteString(st.Name)
	switch {
	case st.State == "running" && st.Progress != nil && st.Progress.BytesTotal > 0:
		fmt.Fprintf(&b, " running %d%%", st.Progress.BytesDone*100/st.Progress.BytesTotal)
	case st.State != "idle":
		b.WriteString(" " + st.State)
	case st.LastResult == "":
		b.WriteString(" never ran")
	default:
		b.WriteString(" " + st.LastResult)
		if st.LastRun != nil {
			fmt.Fprintf(&b, " %s ago", roundAgo(now.Sub(*st.LastRun)))
		}
	}
	if st.NextRun != nil && st.State == "idle" {
		fmt.Fprintf(&b, ", next %s", st.NextRun.Local().Format("Jan 2 15:04"))
	}
	if st.StateError != "" {
		b.WriteString(", state not saved")
	}
	return b.String()
}

func roundAgo(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < time.Minute:
		return d.Round(time.Second)
	case d < 24*time.Hour:
		return d.Round(time.Minute)
	}
	return d.Round(time.Hour)
}

// list snapshots every job's status.
func (s *Service) list() JobList {
	out := JobList{Jobs: make([]JobStatus, 0, len(s.jobs))}
	for _, j := range s.jobs {
		out.Jobs = append(out.Jobs, j.status())
	}
	return out
}

// maxHealthProblems is how many jobs the degraded reason names; status
// and `hostd backup jobs` show every job's problem.
const maxHealthProblems = 20

// healthChanged says a job's problem may have changed: the refresher
// reports the service's health again. It never blocks.
func (s *Service) healthChanged() {
	s.healthGen.Add(1)
	select {
	case s.healthKick <- struct{}{}:
	default:
	}
}

// healthSettled reports whether the last health report reflects every
// change announced so far.
func (s *Service) healthSettled() bool { return s.healthDone.Load() == s.healthGen.Load() }

// refreshLoop reports the health after each change until ctx is done;
// nothing is reported once it is.
func (s *Service) refreshLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.healthKick:
		}
		gen := s.healthGen.Load()
		s.refreshHealth(ctx)
		s.healthDone.Store(gen)
	}
}

// refreshHealth reports ready, or degraded naming the jobs with a
// problem (the first maxHealthProblems of them). It costs one pass over
// the jobs: each job's problem is O(1), its schedule resolved only when
// its last success changes.
func (s *Service) refreshHealth(ctx context.Context) {
	now := s.clock.Now()
	var problems []string
	n := 0
	for _, j := range s.jobs {
		if p := j.problem(now); p != "" {
			if n < maxHealthProblems {
				problems = append(problems, p)
			}
			n++
		}
	}
	if n > maxHealthProblems {
		problems = append(problems, fmt.Sprintf("and %d more jobs with problems", n-maxHealthProblems))
	}
	reason := strings.Join(problems, "; ")
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if ctx.Err() != nil || s.reported && reason == s.lastHealth {
		// A stopping service reports nothing more: the supervisor
		// said it is stopping.
		return
	}
	s.reported, s.lastHealth = true, reason
	if reason == "" {
		s.env.Health.Ready()
		return
	}
	s.env.Health.Degraded(errors.New(reason))
}

// machineID identifies this host for the fixed randomized delay, as
// systemd uses /etc/machine-id.
func machineID() string {
	if b, err := os.ReadFile("/etc/machine-id"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	h, _ := os.Hostname()
	return h
}

// repositoryKey identifies a repository for the one-run-per-repository
// rule.
func repositoryKey(repo string) string {
	if strings.Contains(repo, "://") {
		return strings.TrimRight(repo, "/")
	}
	return filepath.Clean(repo)
}

// stalePeriod is how long after a success the job may go without another
// before it counts as overdue: twice the gap between the two elapses
// that follow it, plus the randomized delay.
func stalePeriod(s *schedule.Schedule, after time.Time, delay time.Duration) (time.Duration, bool) {
	n1 := s.Next(after)
	if n1.IsZero() {
		return 0, false
	}
	n2 := s.Next(n1)
	if n2.IsZero() {
		return 0, false
	}
	return 2*n2.Sub(n1) + delay, true
}
