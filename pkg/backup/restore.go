package backup

import (
	"context"
	"fmt"

	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

func restorerOptions(o RestoreOptions, r *Repository) restorer.Options {
	ro := restorer.Options{Target: o.Target, Include: o.Include, Overwrite: o.Overwrite,
		ProgressInterval: o.ProgressInterval, Warn: o.Warn, Now: r.now, Limits: r.opts.Limits,
		Exclude: o.Exclude, Verify: o.Verify}
	if ro.Warn == nil {
		ro.Warn = func(p string, err error) { r.log.Warn("cannot restore", "path", p, "err", err) }
	}
	if o.Progress != nil {
		ro.Progress = func(p restorer.Progress) {
			o.Progress(Progress{FilesDone: p.FilesDone, FilesTotal: p.FilesTotal, BytesDone: p.BytesDone,
				BytesTotal: p.BytesTotal, Errors: p.Errors, Elapsed: p.Elapsed, ScanDone: true})
		}
	}
	return ro
}

func runRestore(ctx context.Context, repo *repository.Repository, snap *repository.Snapshot, o restorer.Options) (*restorer.Summary, error) {
	sum, err := restorer.Run(ctx, repo, snap, o)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", snap.ID().Short(), err)
	}
	return sum, nil
}
