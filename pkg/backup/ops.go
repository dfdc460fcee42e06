package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hostd/hostd/pkg/backup/checker"
	"github.com/hostd/hostd/pkg/backup/crypto"
	"github.com/hostd/hostd/pkg/backup/forget"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// RetentionPolicy says which snapshots Forget keeps (restic's rule, see
// package forget). Counts of -1 are unlimited.
type RetentionPolicy = forget.Policy

// ForgetOptions configure ForgetWith.
type ForgetOptions struct {
	Policy RetentionPolicy
	DryRun bool
	// Filter limits forget to the snapshots it selects; the others are
	// neither kept nor removed, and not listed.
	Filter SnapshotFilter
	// GroupBy groups the snapshots the policy is applied to on its own;
	// nil is host and paths (restic's default).
	GroupBy *GroupBy
	// Snapshots names snapshots to remove ("latest" or ID prefixes)
	// instead of a policy.
	Snapshots []string
}

// ForgetResult lists the decisions of Forget: all of them in Keep and
// Remove, and per group in Groups.
type ForgetResult struct {
	Keep    []ForgetEntry `json:"keep"`
	Remove  []ForgetEntry `json:"remove"`
	Groups  []ForgetGroup `json:"groups"`
	GroupBy string        `json:"group_by"`
	DryRun  bool          `json:"dry_run,omitempty"`
}

// ForgetGroup is what forget decided in one group, newest first.
type ForgetGroup struct {
	Key    GroupKey      `json:"group_key"`
	Keep   []ForgetEntry `json:"keep"`
	Remove []ForgetEntry `json:"remove"`
}

// ForgetEntry is a snapshot and why it is kept.
type ForgetEntry struct {
	SnapshotInfo
	Reasons []string `json:"reasons,omitempty"`
}

// Forget removes the snapshots policy does not keep (only lists them with
// dryRun), grouped by host and paths. Data is freed by Prune. An empty
// policy is refused.
func (r *Repository) Forget(ctx context.Context, policy RetentionPolicy, dryRun bool) (*ForgetResult, error) {
	return r.ForgetWith(ctx, ForgetOptions{Policy: policy, DryRun: dryRun})
}

// ForgetWith is Forget on the snapshots o.Filter selects, grouped by
// o.GroupBy.
func (r *Repository) ForgetWith(ctx context.Context, o ForgetOptions) (*ForgetResult, error) {
	policy := o.Policy
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	if len(o.Snapshots) > 0 {
		if !policy.Empty() {
			return nil, errors.New("forget: give snapshots to remove or a policy, not both")
		}
		return r.forgetNamed(ctx, o)
	}
	if policy.Empty() {
		return nil, errors.New("forget: empty policy would remove every snapshot; give at least one keep option")
	}
	by := forget.DefaultGroupBy
	if o.GroupBy != nil {
		by = *o.GroupBy
	}
	lock, err := r.repo.Lock(ctx, !o.DryRun)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	defer lock.Unlock()
	snaps, err := r.filteredSnapshots(ctx, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	byID := map[string]*repository.Snapshot{}
	items := make([]forget.Item, 0, len(snaps))
	for _, s := range snaps {
		byID[s.ID().String()] = s
		items = append(items, forget.Item{ID: s.ID().String(), Time: s.Time, Hostname: s.Hostname, Paths: s.Paths, Tags: s.Tags})
	}
	res := &ForgetResult{Keep: []ForgetEntry{}, Remove: []ForgetEntry{}, Groups: []ForgetGroup{}, GroupBy: by.String(), DryRun: o.DryRun}
	for _, g := range forget.ApplyGrouped(items, policy, time.Local, by) {
		fg := ForgetGroup{Key: g.Key, Keep: []ForgetEntry{}, Remove: []ForgetEntry{}}
		for _, d := range g.Decisions {
			s := byID[d.ID]
			e := ForgetEntry{SnapshotInfo: snapshotInfo(s), Reasons: d.Reasons}
			if d.Keep {
				fg.Keep = append(fg.Keep, e)
				res.Keep = append(res.Keep, e)
				continue
			}
			fg.Remove = append(fg.Remove, e)
			res.Remove = append(res.Remove, e)
			if !o.DryRun {
				if err := r.repo.RemoveSnapshot(ctx, s.ID()); err != nil {
					return res, fmt.Errorf("forget: %w", err)
				}
			}
		}
		res.Groups = append(res.Groups, fg)
	}
	return res, nil
}

// forgetNamed removes the snapshots o names.
func (r *Repository) forgetNamed(ctx context.Context, o ForgetOptions) (*ForgetResult, error) {
	lock, err := r.repo.Lock(ctx, !o.DryRun)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	defer lock.Unlock()
	snaps, err := r.selectSnapshots(ctx, o.Snapshots, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	res := &ForgetResult{Keep: []ForgetEntry{}, Remove: []ForgetEntry{}, Groups: []ForgetGroup{}, DryRun: o.DryRun}
	g := ForgetGroup{Keep: []ForgetEntry{}, Remove: []ForgetEntry{}}
	for _, s := range snaps {
		e := ForgetEntry{SnapshotInfo: snapshotInfo(s)}
		res.Remove = append(res.Remove, e)
		g.Remove = append(g.Remove, e)
		if !o.DryRun {
			if err := r.repo.RemoveSnapshot(ctx, s.ID()); err != nil {
				return res, fmt.Errorf("forget: snapshot %s: %w", s.ID().Short(), err)
			}
		}
	}
	res.Groups = append(res.Groups, g)
	return res, nil
}

// CheckOptions configure Check.
type CheckOptions struct {
	ReadData       bool
	ReadDataSubset string // "10%" or "n/m"
	// NoLock skips the shared lock, for a repository that cannot be
	// written (read-only media, a full disk); a concurrent prune may
	// then make check report errors that are not there.
	NoLock bool
}

// readLock takes a shared lock, unless noLock (a nil *Lock unlocks as a
// no-op).
func (r *Repository) readLock(ctx context.Context, noLock bool) (*repository.Lock, error) {
	if noLock {
		return nil, nil
	}
	l, err := r.repo.Lock(ctx, false)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) {
		return nil, fmt.Errorf("%w (a repository that cannot be written is read without a lock: --no-lock)", err)
	}
	return l, err
}

// CheckResult is the outcome of Check.
type CheckResult = checker.Result

// Check verifies the repository structure and, with ReadData or a subset,
// the data itself.
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (*CheckResult, error) {
	lock, err := r.readLock(ctx, opts.NoLock)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer lock.Unlock()
	res, err := checker.Run(ctx, r.repo, checker.Options{ReadData: opts.ReadData, Subset: opts.ReadDataSubset, Limits: r.opts.Limits})
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return res, nil
}

// Entry is one node listed by Ls.
type Entry struct {
	Path       string    `json:"path"`
	Type       string    `json:"type"`
	Mode       string    `json:"mode"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	Size       uint64    `json:"size"`
	MTime      time.Time `json:"mtime"`
	LinkTarget string    `json:"link_target,omitempty"`
	// PathRaw and LinkTargetRaw hold the bytes (base64 in JSON) of a
	// path or link target that is not valid UTF-8.
	PathRaw       []byte `json:"path_raw,omitempty"`
	LinkTargetRaw []byte `json:"link_target_raw,omitempty"`
}

func entry(p string, n *repository.Node) Entry {
	return Entry{Path: p, Type: n.Type, Mode: fmt.Sprintf("%04o", n.Mode), UID: n.UID, GID: n.GID, User: n.User,
		Group: n.Group, Size: n.Size, MTime: time.Unix(0, n.MTimeNs), LinkTarget: string(n.LinkTarget),
		PathRaw: rawName(p), LinkTargetRaw: rawName(string(n.LinkTarget))}
}

// Ls lists the nodes of snapshot below dir ("" or "/" for everything),
// recursively, within the walk limits of OpenOptions.Limits.
func (r *Repository) Ls(ctx context.Context, snapshot, dir string) ([]Entry, error) {
	snap, err := r.repo.FindSnapshot(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	dir = path.Clean("/" + dir)
	var out []Entry
	tree := snap.Tree
	if dir != "/" {
		n, err := r.repo.FindNode(ctx, snap.Tree, dir)
		if err != nil {
			return nil, fmt.Errorf("ls: %w", err)
		}
		out = append(out, entry(dir, n))
		if n.Type != repository.NodeDir {
			return out, nil
		}
		tree = *n.Subtree
	}
	err = r.repo.WalkTreeBudget(ctx, tree, dir, repository.NewBudget(r.opts.Limits), func(p string, n *repository.Node) error {
		out = append(out, entry(p, n))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ls: snapshot %s: %w", snap.ID().Short(), err)
	}
	return out, nil
}

// Change is one difference reported by Diff: "+" added, "-" removed, "M"
// content or metadata changed, "T" type changed.
type Change struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	// PathRaw holds Path's bytes (base64 in JSON) when they are not
	// valid UTF-8, which JSON strings cannot carry.
	PathRaw []byte `json:"path_raw,omitempty"`
}

func change(op, p string) Change {
	return Change{Op: op, Path: p, PathRaw: rawName(p)}
}

// rawName returns s's bytes when s is not valid UTF-8 (a JSON string of
// it would replace them with U+FFFD), else nil.
func rawName(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

// Diff compares snapshots a and b. Subtrees with the same ID are equal
// and skipped; what differs is expanded within the walk limits of
// OpenOptions.Limits, counted over both snapshots.
func (r *Repository) Diff(ctx context.Context, a, b string) ([]Change, error) {
	sa, err := r.repo.FindSnapshot(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	sb, err := r.repo.FindSnapshot(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	out := []Change{} // [] in JSON when nothing changed
	d := differ{cache: r.repo.NewTreeCache(), budget: repository.NewBudget(r.opts.Limits)}
	if err := d.trees(ctx, &sa.Tree, &sb.Tree, "/", 0, &out); err != nil {
		return nil, fmt.Errorf("diff: snapshots %s and %s: %w", sa.ID().Short(), sb.ID().Short(), err)
	}
	return out, nil
}

func xattrsEqual(a, b []repository.Xattr) bool {
	return slices.Equal(a, b)
}

// differ compares two snapshots' trees, counting what it expands.
type differ struct {
	cache  *repository.TreeCache
	budget *repository.Budget
}

func (d *differ) trees(ctx context.Context, a, b *repository.ID, dir string, depth int, out *[]Change) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	if err := d.budget.Enter(depth); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	load := func(id *repository.ID) (*repository.Tree, error) {
		if id == nil {
			return &repository.Tree{}, nil
		}
		return d.cache.Load(ctx, *id)
	}
	ta, err := load(a)
	if err != nil {
		return err
	}
	tb, err := load(b)
	if err != nil {
		return err
	}
	// Counted before anything is compared, so the changes listed stay
	// within the limit.
	for _, t := range []struct {
		id *repository.ID
		n  int
	}{{a, len(ta.Nodes)}, {b, len(tb.Nodes)}} {
		if t.id == nil {
			continue
		}
		if err := d.budget.AddTree(*t.id, t.n); err != nil {
			return err
		}
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var na, nb *repository.Node
		switch {
		case j >= len(tb.Nodes) || (i < len(ta.Nodes) && ta.Nodes[i].Name < tb.Nodes[j].Name):
			na = &ta.Nodes[i]
			i++
		case i >= len(ta.Nodes) || tb.Nodes[j].Name < ta.Nodes[i].Name:
			nb = &tb.Nodes[j]
			j++
		default:
			na, nb = &ta.Nodes[i], &tb.Nodes[j]
			i++
			j++
		}
		var name string
		if na != nil {
			name = string(na.Name)
		} else {
			name = string(nb.Name)
		}
		p := path.Join(dir, name)
		if err := d.budget.AddPath(p); err != nil {
			return err
		}
		switch {
		case nb == nil:
			*out = append(*out, change("-", p))
			if na.Subtree != nil {
				if err := d.trees(ctx, na.Subtree, nil, p, depth+1, out); err != nil {
					return err
				}
			}
		case na == nil:
			*out = append(*out, change("+", p))
			if nb.Subtree != nil {
				if err := d.trees(ctx, nil, nb.Subtree, p, depth+1, out); err != nil {
					return err
				}
			}
		case na.Type != nb.Type:
			*out = append(*out, change("T", p))
		case na.Type == repository.NodeDir:
			if na.Mode != nb.Mode || na.UID != nb.UID || na.GID != nb.GID || !xattrsEqual(na.Xattrs, nb.Xattrs) {
				*out = append(*out, change("M", p))
			}
			if err := d.trees(ctx, na.Subtree, nb.Subtree, p, depth+1, out); err != nil {
				return err
			}
		default:
			if na.Size != nb.Size || na.Mode != nb.Mode || na.MTimeNs != nb.MTimeNs || na.UID != nb.UID || na.GID != nb.GID ||
				na.LinkTarget != nb.LinkTarget || !slices.Equal(na.Content, nb.Content) || !xattrsEqual(na.Xattrs, nb.Xattrs) {
				*out = append(*out, change("M", p))
			}
		}
	}
	return nil
}

// AddKey adds a passphrase; kdf nil uses the default argon2id parameters.
// It returns the new key's name.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf *crypto.KDFParams) (string, error) {
	p := crypto.DefaultKDFParams()
	if kdf != nil {
		p = *kdf
	}
	return r.repo.AddKey(ctx, password, p)
}

// ChangePassword replaces the key in use by one for newPassword.
func (r *Repository) ChangePassword(ctx context.Context, newPassword []byte, kdf *crypto.KDFParams) (string, error) {
	old := r.repo.KeyName()
	name, err := r.AddKey(ctx, newPassword, kdf)
	if err != nil {
		return "", err
	}
	if err := r.repo.Backend().Remove(ctx, keyHandle(old)); err != nil {
		return name, fmt.Errorf("remove old key: %w", err)
	}
	return name, nil
}

// Keys lists key file names; the one in use is marked by KeyInUse.
func (r *Repository) Keys(ctx context.Context) ([]string, error) { return r.repo.Keys(ctx) }

// KeyInUse is the name of the key that opened the repository.
func (r *Repository) KeyInUse() string { return r.repo.KeyName() }

// LockInfo describes a lock for break-lock.
type LockInfo struct {
	ID    string              `json:"id"`
	Lock  repository.LockInfo `json:"lock"`
	Error string              `json:"error,omitempty"`
}

// BreakLocks removes stale locks, or every lock with all.
func (r *Repository) BreakLocks(ctx context.Context, all bool) ([]LockInfo, error) {
	removed, err := r.repo.BreakLocks(ctx, all)
	out := make([]LockInfo, 0, len(removed))
	for _, e := range removed {
		li := LockInfo{ID: e.ID.String(), Lock: e.Info}
		if e.Err != nil {
			li.Error = e.Err.Error()
		}
		out = append(out, li)
	}
	return out, err
}
