package metrics

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// StorageOptions configure the embedded TSDB.
type StorageOptions struct {
	Dir       string
	Retention time.Duration // samples older than this are deleted
	MaxBytes  int64         // 0: no size limit
	// MinBlock is the head block span; default 2h as in Prometheus. Tests
	// shorten it to see compaction.
	MinBlock time.Duration
}

// blockDurations applies Prometheus' rule: blocks start at 2h and grow by
// compaction up to min(retention/10, 31d).
func blockDurations(retention, minBlock time.Duration) (min, max time.Duration) {
	if minBlock <= 0 {
		minBlock = 2 * time.Hour
	}
	max = 31 * 24 * time.Hour
	if retention > 0 && retention/10 < max {
		max = retention / 10
	}
	if max < minBlock {
		max = minBlock
	}
	return minBlock, max
}

// Storage is the embedded Prometheus TSDB.
type Storage struct {
	DB *tsdb.DB
	// WALRepairs counts WAL corruptions found and repaired when it opened.
	WALRepairs int
	MinBlock   time.Duration
	MaxBlock   time.Duration
	reg        *prometheus.Registry // the TSDB's own metrics
}

// OpenStorage opens (creating if needed) the TSDB in o.Dir. A corrupted
// write-ahead log (a crash or full disk in the middle of a write) is
// repaired by dropping the records after the damage; the number of repairs
// is returned in WALRepairs so the caller can report it.
func OpenStorage(o StorageOptions, logger *slog.Logger) (*Storage, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	minB, maxB := blockDurations(o.Retention, o.MinBlock)
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = o.Retention.Milliseconds()
	opts.MaxBytes = o.MaxBytes
	opts.MinBlockDuration = minB.Milliseconds()
	opts.MaxBlockDuration = maxB.Milliseconds()
	// One host has a few thousand series, not millions, and one appender:
	// few lock stripes (each holds two maps; 1024 of them kept 0.25 MiB
	// live) and small chunk write buffers keep the head's memory down.
	opts.StripeSize = 64
	opts.HeadChunksWriteBufferSize = chunks.MinWriteBufferSize
	// The TSDB's own metrics (prometheus_tsdb_*) stay private: hostd
	// publishes the few that matter under its own names.
	reg := prometheus.NewRegistry()
	db, err := tsdb.Open(o.Dir, logger.With("component", "tsdb"), reg, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open tsdb %s: %w", o.Dir, err)
	}
	s := &Storage{DB: db, MinBlock: minB, MaxBlock: maxB, reg: reg}
	mfs, err := reg.Gather()
	if err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "prometheus_tsdb_wal_corruptions_total" && len(mf.GetMetric()) > 0 {
				s.WALRepairs = int(mf.GetMetric()[0].GetCounter().GetValue())
			}
		}
	}
	return s, nil
}

// Close flushes and closes the TSDB.
func (s *Storage) Close() error {
	if err := s.DB.Close(); err != nil {
		return fmt.Errorf("close tsdb: %w", err)
	}
	return nil
}

// headChunks is the number of chunks in the head, as Prometheus'
// /api/v1/status/tsdb reports it.
func (s *Storage) headChunks() int64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == "prometheus_tsdb_head_chunks" && len(mf.GetMetric()) > 0 {
			return int64(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}
