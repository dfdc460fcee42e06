package jobs

import (
	"context"
	"fmt"

	"github.com/hostd/hostd/pkg/backup"
)

// maybeRetain applies the job's retention (forget, then prune) when its
// schedule is due. It runs only after a backup that saved a snapshot, so
// a failing job never thins out the snapshots it still has.
func (j *job) maybeRetain(ctx context.Context, r *run, repo *backup.Repository, res *RunResult) (ran bool, err error) {
	j.mu.Lock()
	last := j.st.LastRetention
	j.mu.Unlock()
	if !due(j.retain, last, j.s.clock.Now()) {
		return false, nil
	}
	r.setPhase(phaseRetention)
	fr, err := repo.Forget(ctx, j.cfg.Retention.policy(), false)
	if err != nil {
		return true, fmt.Errorf("apply retention: %w", err)
	}
	pr, err := repo.Prune(ctx, backup.PruneOptions{})
	if err != nil {
		return true, fmt.Errorf("apply retention: forgot %d snapshots, then: %w", len(fr.Remove), err)
	}
	res.Retention = fmt.Sprintf("kept %d snapshots, forgot %d; pruned %d packs, repacked %d, freed %d bytes",
		len(fr.Keep), len(fr.Remove), pr.PacksDeleted, pr.PacksRepacked, pr.BytesFreed)
	j.log.Info("retention applied", "kept", len(fr.Keep), "forgotten", len(fr.Remove),
		"packs_deleted", pr.PacksDeleted, "packs_repacked", pr.PacksRepacked, "bytes_freed", pr.BytesFreed,
		"temp_files_deleted", pr.TempFiles)
	j.mu.Lock()
	j.st.LastRetention = j.s.clock.Now()
	j.mu.Unlock()
	return true, nil
}

// maybeCheck verifies the repository, reading back a share of the data,
// when the job's check schedule is due.
func (j *job) maybeCheck(ctx context.Context, r *run, repo *backup.Repository, res *RunResult) (ran bool, err error) {
	if j.check == nil {
		return false, nil
	}
	j.mu.Lock()
	last := j.st.LastCheck
	j.mu.Unlock()
	if !due(j.check, last, j.s.clock.Now()) {
		return false, nil
	}
	r.setPhase(phaseCheck)
	cr, err := repo.Check(ctx, backup.CheckOptions{ReadDataSubset: j.cfg.CheckReadData})
	if err != nil {
		return true, fmt.Errorf("check repository: %w", err)
	}
	if !cr.OK() {
		res.Check = fmt.Sprintf("%d problems", len(cr.Errors))
		first := ""
		if len(cr.Errors) > 0 {
			first = ": " + cr.Errors[0].String()
		}
		return true, fmt.Errorf("check repository: %d problems found%s", len(cr.Errors), first)
	}
	res.Check = "no problems"
	j.log.Info("repository checked", "read_data", j.cfg.CheckReadData)
	j.mu.Lock()
	j.st.LastCheck = j.s.clock.Now()
	j.mu.Unlock()
	return true, nil
}
