package checker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// Options configure a check.
type Options struct {
	ReadData bool   // read and verify every pack
	Subset   string // read only a subset: "10%" (random) or "n/m" (packs whose first byte % m == n-1)
	// Limits bound the tree walks (zero fields: the defaults): the depth
	// of every walk, and the nodes expanded when listing affected files.
	Limits repository.Limits
	// HeaderWorkers is how many pack headers are read at once; default 4.
	HeaderWorkers int
}

// Problem is one error found, naming the repository file or object.
type Problem struct {
	Object  string `json:"object"` // e.g. "data/ab12...", "index/..", "snapshots/..", "tree ab12..."
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Object + ": " + p.Message }

// Affected lists the files of one snapshot that need damaged data.
type Affected struct {
	Snapshot string   `json:"snapshot"`
	Paths    []string `json:"paths"`
	// Error, when set, says why the list is incomplete (the snapshot's
	// trees expand past the walk limits, or one cannot be read).
	Error string `json:"error,omitempty"`
	// PathsRaw, when a path is not valid UTF-8 (which JSON strings
	// cannot carry), holds the bytes of each path, index for index (nil
	// for valid ones; base64 in JSON).
	PathsRaw [][]byte `json:"paths_raw,omitempty"`
}

// Result is the outcome of a check.
type Result struct {
	Errors       []Problem  `json:"errors,omitempty"`
	Warnings     []Problem  `json:"warnings,omitempty"`
	Snapshots    int        `json:"snapshots"`
	Packs        int        `json:"packs"`
	PacksRead    int        `json:"packs_read"`
	BlobsRead    int        `json:"blobs_read"`
	DamagedPacks []string   `json:"damaged_packs,omitempty"`
	Affected     []Affected `json:"affected,omitempty"`
}

// OK reports whether no errors were found.
func (r *Result) OK() bool { return len(r.Errors) == 0 }

func (r *Result) errorf(obj, format string, a ...any) {
	r.Errors = append(r.Errors, Problem{Object: obj, Message: fmt.Sprintf(format, a...)})
}

// Run checks repo.
func Run(ctx context.Context, repo *repository.Repository, opts Options) (*Result, error) {
	res := &Result{}
	for id, err := range repo.IndexErrors() {
		res.errorf("index/"+id.String(), "unreadable: %v (its packs were indexed from their headers)", err)
	}
	packs, err := repo.List(ctx, backend.Pack)
	if err != nil {
		return nil, err
	}
	res.Packs = len(packs)
	indexed := repo.Index().Packs()
	headerBad := map[repository.ID]bool{}
	for _, id := range sortedIDs(indexed) {
		size, ok := packs[id]
		if !ok {
			res.errorf("data/"+id.String(), "indexed pack is missing")
			continue
		}
		for _, b := range indexed[id] {
			if int64(b.Offset)+int64(b.Length) > size {
				res.errorf("data/"+id.String(), "blob %s extends beyond pack size %d", b.ID.Short(), size)
				headerBad[id] = true
				break
			}
		}
	}
	// Every indexed pack's header: read (one small read at its end),
	// authenticated and compared with the index. An authentic header
	// fixes the pack's exact size, so this also finds a pack cut short
	// or grown by a single byte.
	probs, err := checkHeaders(ctx, repo, packs, indexed, headerBad, opts.HeaderWorkers)
	if err != nil {
		return nil, err
	}
	res.Errors = append(res.Errors, probs...)
	for id := range packs {
		if _, ok := indexed[id]; !ok {
			res.Warnings = append(res.Warnings, Problem{Object: "data/" + id.String(), Message: "pack not in any index (interrupted backup: the next backup reuses it, prune removes it if unused)"})
		}
	}

	var temps int
	var tempBytes int64
	err = repo.Backend().ListTemp(ctx, func(f backend.TempFile) error {
		temps++
		tempBytes += f.Size
		return nil
	})
	if err != nil {
		return nil, err
	}
	if temps > 0 {
		res.Warnings = append(res.Warnings, Problem{Object: "repository", Message: fmt.Sprintf("%d temporary files (%d bytes) of interrupted writes, or of a write under way; prune removes them", temps, tempBytes)})
	}

	snaps, bad, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for id, err := range bad {
		res.errorf("snapshots/"+id.String(), "unreadable: %v", err)
	}
	res.Snapshots = len(snaps)
	// Each tree once, however many snapshots and directories name it:
	// the work follows what the repository holds, not the paths a DAG
	// of trees expands to.
	seenTrees := map[repository.ID]bool{}
	for _, snap := range snaps {
		err := repo.VisitTrees(ctx, snap.Tree, seenTrees, opts.Limits, func(v *repository.TreeVisit) error {
			dir := v.Path()
			if v.Err != nil {
				res.errorf("tree "+v.ID.String(), "snapshot %s, directory %s: %v", snap.ID().Short(), dir, v.Err)
				return nil
			}
			for i := range v.Tree.Nodes {
				n := &v.Tree.Nodes[i]
				for _, c := range n.Content {
					if !repo.Index().Has(repository.BlobHandle{Type: repository.DataBlob, ID: c}) {
						np := strings.TrimSuffix(dir, "/") + "/" + string(n.Name)
						res.errorf("blob data/"+c.String(), "snapshot %s, file %q: blob not in index", snap.ID().Short(), np)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	if !opts.ReadData && opts.Subset == "" {
		return res, nil
	}
	sel, err := selectPacks(packs, opts.Subset)
	if err != nil {
		return nil, err
	}
	damagedBlobs := map[repository.BlobHandle]bool{}
	for _, id := range sel {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		obj := "data/" + id.String()
		// At most PackLimit bytes: a larger file under a pack's name
		// cannot be a pack of this repository, and is damage, found
		// without reading it.
		data, err := repo.LoadPack(ctx, id)
		if errors.Is(err, backend.ErrTooLarge) {
			res.errorf(obj, "damaged: %v", err)
			res.DamagedPacks = append(res.DamagedPacks, id.String())
			for _, b := range indexed[id] {
				damagedBlobs[b.BlobHandle] = true
			}
			continue
		}
		if err != nil {
			res.errorf(obj, "read: %v", err)
			continue
		}
		res.PacksRead++
		blobs, errs, err := repo.DecodePack(id, data)
		if errors.Is(err, repository.ErrPackContent) && blobs != nil {
			// The header is intact: the damage is in the blobs that
			// fail below (or, if none does, between them).
			res.errorf(obj, "damaged: %v", err)
			res.DamagedPacks = append(res.DamagedPacks, id.String())
			err = nil
		}
		if err != nil {
			res.errorf(obj, "damaged: %v", err)
			res.DamagedPacks = append(res.DamagedPacks, id.String())
			for _, b := range indexed[id] {
				damagedBlobs[b.BlobHandle] = true
			}
			continue
		}
		damaged := false
		for i, b := range blobs {
			res.BlobsRead++
			if errs[i] != nil {
				res.errorf(obj, "blob %s at offset %d: %v", b.BlobHandle, b.Offset, errs[i])
				damagedBlobs[b.BlobHandle] = true
				damaged = true
			}
		}
		if damaged && !slices.Contains(res.DamagedPacks, id.String()) {
			res.DamagedPacks = append(res.DamagedPacks, id.String())
		}
	}
	if len(damagedBlobs) > 0 {
		res.Affected = AffectedByLimits(ctx, repo, snaps, damagedBlobs, opts.Limits)
		for _, a := range res.Affected {
			if a.Error != "" {
				res.errorf("snapshots/"+a.Snapshot, "listing the files affected by damage: %s", a.Error)
			}
		}
	}
	return res, nil
}

// AffectedBy finds, per snapshot, the files and directories that use a
// damaged blob, within the default walk limits.
func AffectedBy(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot, damaged map[repository.BlobHandle]bool) []Affected {
	return AffectedByLimits(ctx, repo, snaps, damaged, repository.Limits{})
}

// AffectedByLimits is AffectedBy within lim. It first marks, visiting
// each tree once, the trees with damage somewhere below them, and then
// expands paths only into those, counting against lim; a snapshot whose
// listing stops early says why in Affected.Error.
func AffectedByLimits(ctx context.Context, repo *repository.Repository, snaps []*repository.Snapshot, damaged map[repository.BlobHandle]bool, lim repository.Limits) []Affected {
	m := damageMarker{repo: repo, damaged: damaged, below: map[repository.ID]bool{}, budget: repository.NewBudget(lim)}
	var out []Affected
	for _, s := range snaps {
		a := Affected{Snapshot: s.ID().String()}
		if damaged[repository.BlobHandle{Type: repository.TreeBlob, ID: s.Tree}] {
			a.Paths = append(a.Paths, "/")
		} else if hit, err := m.mark(ctx, s.Tree, 0); err != nil {
			a.Error = err.Error()
		} else if hit {
			err := repo.WalkTreeBudget(ctx, s.Tree, "/", repository.NewBudget(lim), func(p string, n *repository.Node) error {
				if n.Subtree != nil {
					if damaged[repository.BlobHandle{Type: repository.TreeBlob, ID: *n.Subtree}] {
						a.Paths = append(a.Paths, p+"/")
						return repository.ErrSkipDir
					}
					if !m.below[*n.Subtree] {
						return repository.ErrSkipDir
					}
				}
				for _, c := range n.Content {
					if damaged[repository.BlobHandle{Type: repository.DataBlob, ID: c}] {
						a.Paths = append(a.Paths, p)
						break
					}
				}
				return nil
			})
			if err != nil {
				a.Error = err.Error()
			}
		}
		if len(a.Paths) > 0 || a.Error != "" {
			for _, p := range a.Paths {
				if !utf8.ValidString(p) {
					a.PathsRaw = make([][]byte, len(a.Paths))
					for i, p := range a.Paths {
						if !utf8.ValidString(p) {
							a.PathsRaw[i] = []byte(p)
						}
					}
					break
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// damageMarker works out, once per tree, whether a damaged blob is used
// anywhere below it.
type damageMarker struct {
	repo    *repository.Repository
	damaged map[repository.BlobHandle]bool
	below   map[repository.ID]bool // tree -> damage below it; present once worked out
	budget  *repository.Budget     // for the depth only
}

func (m *damageMarker) mark(ctx context.Context, id repository.ID, depth int) (bool, error) {
	if hit, ok := m.below[id]; ok {
		return hit, nil
	}
	if err := m.budget.Enter(depth); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	t, err := m.repo.LoadTree(ctx, id)
	if err != nil {
		// Reported by the structure check; nothing below it is known.
		m.below[id] = false
		return false, nil
	}
	hit := false
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for _, c := range n.Content {
			if m.damaged[repository.BlobHandle{Type: repository.DataBlob, ID: c}] {
				hit = true
			}
		}
		if n.Subtree == nil {
			continue
		}
		if m.damaged[repository.BlobHandle{Type: repository.TreeBlob, ID: *n.Subtree}] {
			hit = true
			continue
		}
		sub, err := m.mark(ctx, *n.Subtree, depth+1)
		if err != nil {
			return false, err
		}
		hit = hit || sub
	}
	m.below[id] = hit
	return hit, nil
}

func sortedIDs[V any](m map[repository.ID]V) []repository.ID {
	ids := make([]repository.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// selectPacks picks the packs to read: all, a random percentage, or the
// n-th of m groups.
func selectPacks(packs map[repository.ID]int64, subset string) ([]repository.ID, error) {
	all := make([]repository.ID, 0, len(packs))
	for id := range packs {
		all = append(all, id)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].String() < all[j].String() })
	switch {
	case subset == "":
		return all, nil
	case strings.HasSuffix(subset, "%"):
		pct, err := strconv.ParseFloat(strings.TrimSuffix(subset, "%"), 64)
		if err != nil || pct <= 0 || pct > 100 {
			return nil, fmt.Errorf("read-data subset %q: want a percentage in (0, 100]", subset)
		}
		n := int(float64(len(all))*pct/100 + 0.999999)
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return all[:min(n, len(all))], nil
	case strings.Contains(subset, "/"):
		a, b, _ := strings.Cut(subset, "/")
		n, err1 := strconv.Atoi(a)
		m, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || m < 1 || n < 1 || n > m {
			return nil, fmt.Errorf("read-data subset %q: want n/m with 1 <= n <= m", subset)
		}
		var out []repository.ID
		for _, id := range all {
			if int(id[0])%m == n-1 {
				out = append(out, id)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("read-data subset %q: want a percentage (10%%) or n/m", subset)
}
