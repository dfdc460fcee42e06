package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/hostd/hostd/pkg/backup/pattern"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// RewriteTag is the tag a rewritten snapshot gets when the one it
// replaces is kept (RewriteOptions.Forget unset), so the two can be told
// apart in listings, as restic does.
const RewriteTag = "rewrite"

// RewriteOptions configure Rewrite.
type RewriteOptions struct {
	// Excludes are patterns (borg styles, default sh, as create's and
	// restore's --exclude) of snapshot paths to leave out, with
	// everything below them.
	Excludes []string
	// ExcludeFiles name files of such patterns, one a line (empty lines
	// and # comments skipped; "-" is not accepted).
	ExcludeFiles []string
	// Snapshots names the snapshots to rewrite ("latest" or ID
	// prefixes); with none, every snapshot Filter selects.
	Snapshots []string
	Filter    SnapshotFilter
	// Forget removes each rewritten snapshot once its replacement is
	// saved. Its data stays until Prune.
	Forget bool
	// DryRun lists what would be removed without writing anything.
	DryRun bool
}

// RewriteResult is one snapshot Rewrite looked at.
type RewriteResult struct {
	Snapshot SnapshotInfo `json:"snapshot"`
	// NewID is the ID of the snapshot written without the excluded
	// paths; empty when nothing matched (or with DryRun).
	NewID string `json:"new_id,omitempty"`
	// Removed lists the paths left out, the top of each excluded
	// subtree only.
	Removed []Change `json:"removed"`
	// Forgotten: the old snapshot was removed.
	Forgotten bool `json:"forgotten,omitempty"`
}

// Rewrite writes, for each snapshot o selects, a new snapshot without
// the paths o excludes: directories on the way to an excluded path get
// new trees, every other subtree is reused as it is, so no file data is
// read or written. A snapshot in which nothing matches is left alone.
// The new snapshot keeps the old one's time, host, paths and summary,
// names it in Original and, unless o.Forget removes the old one, gets
// RewriteTag. Walks are bounded by OpenOptions.Limits per snapshot.
func (r *Repository) Rewrite(ctx context.Context, o RewriteOptions) ([]RewriteResult, error) {
	excludes := slices.Clone(o.Excludes)
	for _, f := range o.ExcludeFiles {
		if f == "-" {
			return nil, errors.New("rewrite: exclude file: - (stdin) is not accepted")
		}
		lines, err := readListFile(f, nil, false)
		if err != nil {
			return nil, fmt.Errorf("rewrite: exclude file: %w", err)
		}
		excludes = append(excludes, lines...)
	}
	if len(excludes) == 0 {
		return nil, errors.New("rewrite: nothing to do: give --exclude or --exclude-file")
	}
	rules, err := pattern.ParseExcludes(excludes)
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	lock, err := r.repo.Lock(ctx, !o.DryRun)
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	defer lock.Unlock()
	snaps, err := r.selectSnapshots(ctx, o.Snapshots, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("rewrite: %w", err)
	}
	rw := &rewriter{repo: r.repo, excl: pattern.NewMatcher(rules...), dryRun: o.DryRun,
		cache: r.repo.NewTreeCache(), done: map[rewriteKey]rewritten{}}
	out := []RewriteResult{}
	for _, s := range snaps {
		rw.budget = repository.NewBudget(r.opts.Limits)
		res := RewriteResult{Snapshot: snapshotInfo(s), Removed: []Change{}}
		tree, changed, err := rw.tree(ctx, s.Tree, "/", 0, &res.Removed)
		if err != nil {
			return out, fmt.Errorf("rewrite: snapshot %s: %w", s.ID().Short(), err)
		}
		if !changed || o.DryRun {
			out = append(out, res)
			continue
		}
		// The new trees go to packs and an index before the snapshot
		// naming them, as a backup's do.
		if err := r.repo.Flush(ctx); err != nil {
			return out, fmt.Errorf("rewrite: snapshot %s: save trees: %w", s.ID().Short(), err)
		}
		id, err := r.saveRewritten(ctx, s, tree, o.Forget)
		if err != nil {
			return out, fmt.Errorf("rewrite: snapshot %s: %w", s.ID().Short(), err)
		}
		res.NewID, res.Forgotten = id.String(), o.Forget
		out = append(out, res)
	}
	return out, nil
}

// saveRewritten saves a copy of s with root tree, naming s (or the
// snapshot s itself replaced) in Original; with forget it then removes
// s, so a crash in between leaves both, never neither.
func (r *Repository) saveRewritten(ctx context.Context, s *repository.Snapshot, tree repository.ID, forget bool) (repository.ID, error) {
	if forget {
		return r.replaceSnapshot(ctx, s, func(n *repository.Snapshot) { n.Tree = tree })
	}
	n := *s
	n.Tree = tree
	n.Tags = slices.Clone(s.Tags)
	if !slices.Contains(n.Tags, RewriteTag) {
		n.Tags = append(n.Tags, RewriteTag)
	}
	if n.Original == nil {
		orig := s.ID()
		n.Original = &orig
	}
	return r.repo.SaveSnapshot(ctx, &n)
}

// rewriteKey names a tree met at a path: whether a pattern matches
// depends on the path, so the same tree elsewhere is rewritten anew.
type rewriteKey struct {
	id  repository.ID
	dir string
}

// rewritten is what rewriting one tree at one path gave.
type rewritten struct {
	id      repository.ID
	changed bool
	removed []Change
}

// rewriter builds the trees of snapshots without the excluded paths.
// Results are kept per tree and path, so snapshots sharing subtrees (the
// usual case: a series of backups of one host) cost little more than
// one.
type rewriter struct {
	repo   *repository.Repository
	excl   *pattern.Matcher
	dryRun bool
	cache  *repository.TreeCache
	budget *repository.Budget
	done   map[rewriteKey]rewritten
}

// rewriteDoneMax bounds the results kept: past it, they are forgotten
// and trees are rewritten again (the result is the same).
const rewriteDoneMax = 1 << 18

// tree returns tree id (at path dir) without the excluded nodes, and
// whether anything was excluded; removed collects the paths left out.
func (w *rewriter) tree(ctx context.Context, id repository.ID, dir string, depth int, removed *[]Change) (repository.ID, bool, error) {
	key := rewriteKey{id, dir}
	if d, ok := w.done[key]; ok {
		*removed = append(*removed, d.removed...)
		return d.id, d.changed, nil
	}
	if err := w.budget.Enter(depth); err != nil {
		return id, false, fmt.Errorf("directory %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return id, false, err
	}
	t, err := w.cache.Load(ctx, id)
	if err != nil {
		return id, false, fmt.Errorf("directory %s: %w", dir, err)
	}
	if err := w.budget.Add(len(t.Nodes)); err != nil {
		return id, false, err
	}
	var mine []Change
	var nodes []repository.Node // nil until something changes
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, string(n.Name))
		if err := w.budget.AddPath(p); err != nil {
			return id, false, err
		}
		drop, keep := false, *n
		if a := w.excl.Match(p); a == pattern.Exclude || a == pattern.ExcludeNoRecurse {
			drop = true
			mine = append(mine, change("-", p))
		} else if n.Type == repository.NodeDir && n.Subtree != nil {
			sub, changed, err := w.tree(ctx, *n.Subtree, p, depth+1, &mine)
			if err != nil {
				return id, false, err
			}
			if changed {
				keep.Subtree = &sub
			} else if nodes == nil {
				continue
			}
		} else if nodes == nil {
			continue
		}
		if nodes == nil {
			// The first change: copy the nodes before it.
			nodes = make([]repository.Node, i, len(t.Nodes))
			copy(nodes, t.Nodes[:i])
		}
		if !drop {
			nodes = append(nodes, keep)
		}
	}
	res := rewritten{id: id, removed: mine}
	if nodes != nil {
		res.changed = true
		if !w.dryRun {
			// Nodes stay in name order: some were only left out.
			nid, err := w.repo.SaveTree(ctx, &repository.Tree{Nodes: nodes})
			if err != nil {
				return id, false, fmt.Errorf("directory %s: save tree: %w", dir, err)
			}
			res.id = nid
		}
	}
	if len(w.done) >= rewriteDoneMax {
		clear(w.done)
	}
	w.done[key] = res
	*removed = append(*removed, mine...)
	return res.id, res.changed, nil
}
