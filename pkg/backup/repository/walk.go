package repository

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// ErrSkipDir, returned by a WalkFunc for a directory, skips its contents.
var ErrSkipDir = errors.New("skip directory")

// Walk limits. A snapshot's trees form a DAG, not a tree: one subtree may
// be named by any number of directories, so a walk that expands paths
// can meet far more nodes than the repository stores (41 tree blobs that
// each name the next twice expand to 2^40 paths). Whoever can write valid
// tree blobs (a holder of the key) could otherwise make restore, ls or
// diff run out of memory. Walks that expand paths therefore count the
// nodes they meet and the depth they reach and stop at these limits;
// walks that need only what is reachable (check, prune) visit each tree
// once and bound only the depth.
const (
	// DefaultMaxWalkNodes bounds the nodes (files, directories, links)
	// one walk of a snapshot meets, counting a subtree again at each path
	// that names it, and a node with a long path once more per
	// PathBytesPerNode bytes: 10 million, several times the files of a
	// large host. A walk holds a few hundred bytes per node it lists or
	// plans (ls, restore, diff), so a hostile snapshot costs at most what
	// the largest snapshot accepted costs: a few GiB.
	DefaultMaxWalkNodes = 10_000_000
	// PathBytesPerNode is the path length a node may have before it
	// counts as more than one against MaxNodes, so the paths a walk
	// builds stay within MaxNodes*PathBytesPerNode bytes.
	PathBytesPerNode = 128
	// MaxPathBytes bounds a path in a snapshot: PATH_MAX, the longest
	// path the archiver can read, as it reads by full path.
	MaxPathBytes = 4096
	// DefaultMaxTreeDepth bounds how deep directories nest: a path of
	// MaxPathBytes holds at most 2048 names.
	DefaultMaxTreeDepth = MaxPathBytes / 2
	// DefaultMaxExpansion bounds how many times over a walk may meet the
	// same entries: past DefaultExpansionFloor nodes, a walk that has met
	// more than this many nodes per distinct node of the trees it loaded
	// stops. A snapshot names a subtree more than once only where a
	// directory was copied whole (the same content at two paths); a
	// thousand copies of everything is no real host, while a DAG of trees
	// naming each other twice (41 trees, 2^40 paths) passes that ratio
	// within the floor, long before MaxNodes, and so costs megabytes, not
	// gigabytes, to refuse.
	DefaultMaxExpansion = 1024
	// DefaultExpansionFloor is the walk size below which the expansion
	// ratio is not judged: a small snapshot of a few copied directories
	// may well name each entry many times.
	DefaultExpansionFloor = 256 << 10
	// maxDistinctTracked bounds the tree IDs a Budget remembers to count
	// distinct entries; past it the expansion ratio is no longer judged
	// (a walk with that many distinct trees is no small DAG) and MaxNodes
	// alone bounds the walk.
	maxDistinctTracked = 1 << 20
)

// ErrWalkLimit is matched (errors.Is) by the error of a walk stopped by
// its limits.
var ErrWalkLimit = errors.New("the repository may be hostile or damaged")

// Limits bound a walk of trees. Zero fields take the defaults.
type Limits struct {
	MaxNodes int64 // nodes met, a subtree counted at each path naming it; 0: DefaultMaxWalkNodes
	MaxDepth int   // directory levels below the root; 0: DefaultMaxTreeDepth
	// MaxExpansion bounds nodes met per distinct node loaded, judged past
	// ExpansionFloor nodes; 0: DefaultMaxExpansion, DefaultExpansionFloor.
	MaxExpansion   int64
	ExpansionFloor int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxWalkNodes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxTreeDepth
	}
	if l.MaxExpansion <= 0 {
		l.MaxExpansion = DefaultMaxExpansion
	}
	if l.ExpansionFloor <= 0 {
		l.ExpansionFloor = DefaultExpansionFloor
	}
	return l
}

// Budget counts a walk's nodes and depth against its Limits. One Budget
// serves one walk (or several whose sum is bounded); it is not safe for
// concurrent use.
type Budget struct {
	lim   Limits
	nodes int64

	seen     map[ID]struct{} // trees loaded, up to maxDistinctTracked
	distinct int64           // nodes of the trees in seen
	untraced bool            // seen is full: the expansion is not judged
}

// NewBudget returns a budget for lim (zero fields: the defaults).
func NewBudget(lim Limits) *Budget { return &Budget{lim: lim.withDefaults()} }

// Limits returns the limits in force.
func (b *Budget) Limits() Limits { return b.lim }

// Nodes returns the nodes counted so far.
func (b *Budget) Nodes() int64 { return b.nodes }

// Add counts n more nodes, failing once the total passes the limit. It
// is called before the nodes are handed on, so whatever a walk builds
// from them stays within the limit.
func (b *Budget) Add(n int) error {
	b.nodes += int64(n)
	if b.nodes > b.lim.MaxNodes {
		return fmt.Errorf("tree expands past %d entries; %w", b.lim.MaxNodes, ErrWalkLimit)
	}
	return nil
}

// AddTree counts the n nodes of tree id like Add, and also stops a walk
// that meets the same entries more than MaxExpansion times over (see
// DefaultMaxExpansion).
func (b *Budget) AddTree(id ID, n int) error {
	if !b.untraced {
		if b.seen == nil {
			b.seen = map[ID]struct{}{}
		}
		if _, ok := b.seen[id]; !ok {
			if len(b.seen) >= maxDistinctTracked {
				b.untraced = true
			} else {
				b.seen[id] = struct{}{}
				b.distinct += int64(n)
			}
		}
	}
	if err := b.Add(n); err != nil {
		return err
	}
	if !b.untraced && b.nodes > b.lim.ExpansionFloor && b.nodes > b.lim.MaxExpansion*max(b.distinct, 1) {
		return fmt.Errorf("tree expands to %d entries from %d distinct ones, more than %d-fold; %w", b.nodes, b.distinct, b.lim.MaxExpansion, ErrWalkLimit)
	}
	return nil
}

// AddPath counts the extra cost of a node's path p (one node more per
// PathBytesPerNode bytes past the first; the node itself was counted by
// Add) and refuses a path longer than MaxPathBytes.
func (b *Budget) AddPath(p string) error {
	if len(p) > MaxPathBytes {
		return fmt.Errorf("path of %d bytes under %.64q..., longer than %d; %w", len(p), p, MaxPathBytes, ErrWalkLimit)
	}
	if extra := len(p) / PathBytesPerNode; extra > 0 {
		return b.Add(extra)
	}
	return nil
}

// Enter checks that a directory at depth (1 for the root's entries'
// subtrees) is within the limit.
func (b *Budget) Enter(depth int) error {
	if depth > b.lim.MaxDepth {
		return fmt.Errorf("trees nest deeper than %d levels; %w", b.lim.MaxDepth, ErrWalkLimit)
	}
	return nil
}

// WalkFunc is called for each node with its absolute path in the snapshot.
type WalkFunc func(p string, n *Node) error

// WalkTree calls fn for every node below tree id, depth first in name
// order, with paths starting at prefix ("/" for a snapshot root). It
// stops with an error matching ErrWalkLimit past the default Limits.
func (r *Repository) WalkTree(ctx context.Context, id ID, prefix string, fn WalkFunc) error {
	return r.WalkTreeBudget(ctx, id, prefix, NewBudget(Limits{}), fn)
}

// WalkTreeBudget is WalkTree counting against b.
func (r *Repository) WalkTreeBudget(ctx context.Context, id ID, prefix string, b *Budget, fn WalkFunc) error {
	w := walker{r: r, b: b, fn: fn, cache: r.NewTreeCache()}
	return w.walk(ctx, id, prefix, 0)
}

// WalkTreePrefetch is WalkTreeBudget reading ahead on object storage and
// REST servers (backends that hint a pack size): the first tree needed
// from a pack brings all the pack's tree segments, read in parallel, and
// subtrees are decoded ahead of the walk (see PrefetchReaders). Elsewhere
// it is WalkTreeBudget. Meant for walks that
// visit most of a snapshot (a whole restore), not one path.
func (r *Repository) WalkTreePrefetch(ctx context.Context, id ID, prefix string, b *Budget, fn WalkFunc) error {
	w := walker{r: r, b: b, fn: fn, cache: r.NewTreeCache()}
	if _, ok := r.be.(backend.PackSizeHinter); ok {
		pf := r.newTreePrefetcher(ctx)
		defer pf.close()
		w.cache.pf = pf
	}
	return w.walk(ctx, id, prefix, 0)
}

type walker struct {
	r     *Repository
	b     *Budget
	fn    WalkFunc
	cache *TreeCache
}

func (w *walker) walk(ctx context.Context, id ID, prefix string, depth int) error {
	if err := w.b.Enter(depth); err != nil {
		return fmt.Errorf("directory %s: %w", prefix, err)
	}
	t, err := w.cache.Load(ctx, id)
	if err != nil {
		return err
	}
	if err := w.b.AddTree(id, len(t.Nodes)); err != nil {
		return err
	}
	for i := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &t.Nodes[i]
		p := path.Join(prefix, string(n.Name))
		if err := w.b.AddPath(p); err != nil {
			return err
		}
		err := w.fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == NodeDir && n.Subtree != nil {
			if err := w.walk(ctx, *n.Subtree, p, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// treeCacheNodes bounds the nodes of the decoded trees a walk keeps, so
// a subtree met again soon (a directory copied within the snapshot, or
// a DAG of trees naming each other) is not read and decoded again.
const treeCacheNodes = 1 << 16

// TreeCache keeps the recently loaded trees of one walk, oldest out
// first. Trees are immutable, so a cached tree's nodes are handed out
// again, and must not be changed. Not safe for concurrent use.
type TreeCache struct {
	r     *Repository
	pf    *treePrefetcher // reads ahead, when set
	trees map[ID]*Tree
	order []ID
	nodes int
}

// NewTreeCache returns an empty cache of r's trees.
func (r *Repository) NewTreeCache() *TreeCache { return &TreeCache{r: r, trees: map[ID]*Tree{}} }

// Load returns tree id, from the cache or loaded (LoadTree).
func (c *TreeCache) Load(ctx context.Context, id ID) (*Tree, error) {
	if t, ok := c.trees[id]; ok {
		return t, nil
	}
	var t *Tree
	var err error
	if c.pf != nil {
		t, err = c.pf.load(ctx, id)
	} else {
		t, err = c.r.LoadTree(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	n := len(t.Nodes) + 1
	if n > treeCacheNodes/4 {
		return t, nil
	}
	for c.nodes+n > treeCacheNodes && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.nodes -= len(c.trees[old].Nodes) + 1
		delete(c.trees, old)
	}
	c.trees[id] = t
	c.order = append(c.order, id)
	c.nodes += n
	return t, nil
}

// TreeVisit is one tree met by VisitTrees.
type TreeVisit struct {
	ID   ID
	Tree *Tree // nil when Err is set
	Err  error // loading the tree failed, or it nests past the depth limit
	at   *visitPath
}

// visitPath is the path by which a tree was first reached, kept as a
// chain of names so waiting trees share their parents' paths.
type visitPath struct {
	parent *visitPath
	name   Bytes
}

// Path returns the directory path (from its snapshot's root, "/") by
// which the tree was first reached.
func (v *TreeVisit) Path() string {
	var names []string
	for p := v.at; p != nil; p = p.parent {
		names = append(names, string(p.name))
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/")
}

// VisitTrees calls fn once for every tree reachable from root (each tree
// ID once, however many directories name it; seen carries the IDs
// visited across calls and may be shared by the walks of several
// snapshots), parents before their subtrees. A tree that cannot be
// loaded, or that nests deeper than lim allows, is passed with Err set
// and not descended into; fn's own error stops the walk. Its work and
// memory follow the trees the repository holds, not the paths they
// expand to.
func (r *Repository) VisitTrees(ctx context.Context, root ID, seen map[ID]bool, lim Limits, fn func(v *TreeVisit) error) error {
	b := NewBudget(lim)
	type item struct {
		id    ID
		depth int
		at    *visitPath
	}
	// An explicit stack: its size follows the trees waiting, not the
	// depth of the directories.
	stack := []item{{id: root}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[it.id] {
			continue
		}
		seen[it.id] = true
		v := &TreeVisit{ID: it.id, at: it.at}
		if err := b.Enter(it.depth); err != nil {
			v.Err = fmt.Errorf("tree %s: %w", it.id.Short(), err)
		} else {
			v.Tree, v.Err = r.LoadTree(ctx, it.id)
		}
		if err := fn(v); err != nil {
			return err
		}
		if v.Err != nil {
			continue
		}
		t := v.Tree
		for i := len(t.Nodes) - 1; i >= 0; i-- {
			if s := t.Nodes[i].Subtree; s != nil && !seen[*s] {
				stack = append(stack, item{id: *s, depth: it.depth + 1, at: &visitPath{parent: it.at, name: t.Nodes[i].Name}})
			}
		}
	}
	return nil
}

// FindNode returns the node at absolute path p in tree id (nil, nil for
// the root itself).
func (r *Repository) FindNode(ctx context.Context, id ID, p string) (*Node, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil, nil
	}
	cur := id
	parts := splitPath(p)
	for i, name := range parts {
		t, err := r.LoadTree(ctx, cur)
		if err != nil {
			return nil, err
		}
		n := t.Find(name)
		if n == nil {
			return nil, errors.New("no such file or directory in snapshot: " + p)
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != NodeDir {
			return nil, errors.New("not a directory in snapshot: " + path.Join(parts[:i+1]...))
		}
		cur = *n.Subtree
	}
	return nil, nil
}

func splitPath(p string) []string {
	var out []string
	for p != "/" && p != "" {
		dir, base := path.Split(p)
		out = append([]string{base}, out...)
		p = path.Clean(dir)
	}
	return out
}
