package jobs

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions. Every metric has the label job.
var (
	descLastSuccess = prometheus.NewDesc("hostd_backup_last_success_timestamp_seconds",
		"Unix time a run of the job last saved a snapshot.", []string{"job"}, nil)
	descLastDuration = prometheus.NewDesc("hostd_backup_last_duration_seconds",
		"How long the job's last run took.", []string{"job"}, nil)
	descAddedBytes = prometheus.NewDesc("hostd_backup_added_bytes",
		"Bytes the job's last successful run added to the repository (after deduplication, before compression).", []string{"job"}, nil)
	descFiles = prometheus.NewDesc("hostd_backup_files",
		"Files in the job's last snapshot.", []string{"job"}, nil)
	descErrors = prometheus.NewDesc("hostd_backup_errors_total",
		"Runs of the job that failed since hostd started.", []string{"job"}, nil)
	descRepoSize = prometheus.NewDesc("hostd_backup_repository_size_bytes",
		"Size of the job's repository after its last run.", []string{"job"}, nil)
	descRunning = prometheus.NewDesc("hostd_backup_running",
		"1 while the job runs or waits for its repository.", []string{"job"}, nil)
	descNextRun = prometheus.NewDesc("hostd_backup_next_run_timestamp_seconds",
		"Unix time of the job's next scheduled run.", []string{"job"}, nil)
	descInterval = prometheus.NewDesc("hostd_backup_schedule_interval_seconds",
		"Seconds between the job's first two scheduled times after its last success (or, before one, after it was first seen): the period that makes it overdue when twice as long has passed.", []string{"job"}, nil)
	descUnreadable = prometheus.NewDesc("hostd_backup_unreadable_files",
		"Files or directories the job's last run could not read.", []string{"job"}, nil)
	descStateSaveErrors = prometheus.NewDesc("hostd_backup_state_save_errors_total",
		"Failed saves of the job's state file since hostd started (full or read-only state directory).", []string{"job"}, nil)
	descRuns = prometheus.NewDesc("hostd_backup_runs_total",
		"Finished runs of the job since hostd started, by result.", []string{"job", "result"}, nil)
)

// collector reads every job's state at scrape time, so the metrics and
// the status always agree.
type collector struct {
	s *Service
}

var _ prometheus.Collector = (*collector)(nil)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLastSuccess, descLastDuration, descAddedBytes, descFiles, descErrors,
		descRepoSize, descRunning, descNextRun, descInterval, descUnreadable, descRuns, descStateSaveErrors} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, j := range c.s.jobs {
		// The interval is the one staleAt resolved for the current base
		// (resolved once per base, cached): stale = base + 2*interval +
		// randomized delay.
		j.staleAt()
		j.mu.Lock()
		st, errs, saveErrs, next, running := j.st, j.errors, j.saveErrors, j.next, j.cur != nil
		var interval time.Duration
		if !j.stale.IsZero() && !j.staleBase.IsZero() {
			interval = (j.stale.Sub(j.staleBase) - j.cfg.RandomizedDelay) / 2
		}
		runs := make(map[string]int64, len(j.runs))
		for k, v := range j.runs {
			runs[k] = v
		}
		j.mu.Unlock()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, j.name)
		}
		if !st.LastSuccess.IsZero() {
			gauge(descLastSuccess, float64(st.LastSuccess.UnixNano())/1e9)
		}
		if !st.LastEnd.IsZero() {
			gauge(descLastDuration, st.LastDuration.Seconds())
		}
		gauge(descAddedBytes, float64(st.BytesAdded))
		gauge(descFiles, float64(st.Files))
		gauge(descUnreadable, float64(st.FilesFailed))
		if st.RepositorySize > 0 {
			gauge(descRepoSize, float64(st.RepositorySize))
		}
		if running {
			gauge(descRunning, 1)
		} else {
			gauge(descRunning, 0)
		}
		if !next.IsZero() {
			gauge(descNextRun, float64(next.Unix()))
		}
		if interval > 0 {
			gauge(descInterval, interval.Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(errs), j.name)
		ch <- prometheus.MustNewConstMetric(descStateSaveErrors, prometheus.CounterValue, float64(saveErrs), j.name)
		for _, res := range []string{ResultSuccess, ResultPartial, ResultFailed, ResultInterrupted} {
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(runs[res]), j.name, res)
		}
	}
}
