package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// FindOptions configure Find.
type FindOptions struct {
	// Pattern is a shell pattern (path.Match) matched against each
	// node's name, or against its whole path when it holds a "/".
	Pattern string
	// Newer and Older keep only nodes modified after / before these
	// (zero: no bound).
	Newer, Older time.Time
	Filter       SnapshotFilter
	// Snapshots limits the search to these ("latest" or ID prefixes).
	Snapshots []string
}

// FindResult is the matches in one snapshot.
type FindResult struct {
	Snapshot SnapshotInfo `json:"snapshot"`
	Matches  []Entry      `json:"matches"`
}

// Find lists the nodes matching o in every snapshot o selects, oldest
// snapshot first. Each snapshot's walk is bounded by OpenOptions.Limits.
// Without a path pattern, whether a node matches does not depend on
// where it is, so each distinct tree is read once: what matched in it
// and below it is kept by its ID, and a tree met again (in another
// directory or snapshot) gives its matches from there, at the cost of
// the matches; a tree in which nothing matched costs nothing.
func (r *Repository) Find(ctx context.Context, o FindOptions) ([]FindResult, error) {
	if _, err := path.Match(o.Pattern, ""); err != nil || o.Pattern == "" {
		return nil, fmt.Errorf("find: pattern %q: want a shell pattern such as '*.go'", o.Pattern)
	}
	snaps, err := r.selectSnapshots(ctx, o.Snapshots, o.Filter)
	if err != nil {
		return nil, fmt.Errorf("find: %w", err)
	}
	f := &finder{o: o, repo: r.repo, cache: r.repo.NewTreeCache(), seen: map[repository.ID][]found{}, byPath: strings.Contains(o.Pattern, "/")}
	out := []FindResult{}
	for _, s := range snaps {
		f.budget = repository.NewBudget(r.opts.Limits)
		var matches []Entry
		if _, err := f.walk(ctx, s.Tree, "/", 0, &matches); err != nil {
			return nil, fmt.Errorf("find: snapshot %s: %w", s.ID().Short(), err)
		}
		if len(matches) > 0 {
			out = append(out, FindResult{Snapshot: snapshotInfo(s), Matches: matches})
		}
	}
	return out, nil
}

type finder struct {
	o      FindOptions
	repo   *repository.Repository
	cache  *repository.TreeCache // path patterns: trees are walked at each path
	budget *repository.Budget
	// seen holds, for each tree walked (name patterns only), what
	// matched in it or below it, in walk order; empty: nothing did.
	seen   map[repository.ID][]found
	byPath bool
}

// found is a node of a walked tree that matched (match), or a directory
// below which something did (below), or both.
type found struct {
	n     *repository.Node
	match bool
	below bool
}

func (f *finder) match(p string, n *repository.Node) bool {
	subject := string(n.Name)
	if f.byPath {
		subject = p
	}
	if ok, _ := path.Match(f.o.Pattern, subject); !ok {
		return false
	}
	mt := time.Unix(0, n.MTimeNs)
	if !f.o.Newer.IsZero() && !mt.After(f.o.Newer) {
		return false
	}
	if !f.o.Older.IsZero() && !mt.Before(f.o.Older) {
		return false
	}
	return true
}

// walk appends the matches below tree id (at dir) and reports whether
// there were any.
func (f *finder) walk(ctx context.Context, id repository.ID, dir string, depth int, out *[]Entry) (bool, error) {
	if err := f.budget.Enter(depth); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !f.byPath {
		if fs, ok := f.seen[id]; ok {
			return len(fs) > 0, f.replay(ctx, id, fs, dir, depth, out)
		}
	}
	var t *repository.Tree
	var err error
	if f.byPath {
		t, err = f.cache.Load(ctx, id)
	} else {
		// Read once: what is needed again is in f.seen.
		t, err = f.repo.LoadTree(ctx, id)
	}
	if err != nil {
		return false, err
	}
	if err := f.budget.AddTree(id, len(t.Nodes)); err != nil {
		return false, err
	}
	var fs []found
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, string(n.Name))
		if err := f.budget.AddPath(p); err != nil {
			return false, err
		}
		fd := found{n: n, match: f.match(p, n)}
		if fd.match {
			*out = append(*out, entry(p, n))
		}
		if n.Type == repository.NodeDir && n.Subtree != nil {
			sub, err := f.walk(ctx, *n.Subtree, p, depth+1, out)
			if err != nil {
				return false, err
			}
			fd.below = sub
		}
		if fd.match || fd.below {
			fs = append(fs, fd)
		}
	}
	if !f.byPath {
		if fs == nil {
			fs = []found{}
		}
		f.seen[id] = fs
	}
	return len(fs) > 0, nil
}

// replay appends the matches of tree id, walked before, at dir. It
// counts against the budget as a walk of a tree holding only the nodes
// in fs would, so a DAG of trees naming each other many times is
// stopped as a walk stops it.
func (f *finder) replay(ctx context.Context, id repository.ID, fs []found, dir string, depth int, out *[]Entry) error {
	if len(fs) == 0 {
		return nil
	}
	if err := f.budget.AddTree(id, len(fs)); err != nil {
		return err
	}
	for _, fd := range fs {
		p := path.Join(dir, string(fd.n.Name))
		if err := f.budget.AddPath(p); err != nil {
			return err
		}
		if fd.match {
			*out = append(*out, entry(p, fd.n))
		}
		if fd.below {
			if _, err := f.walk(ctx, *fd.n.Subtree, p, depth+1, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListKinds are the kinds List takes.
var ListKinds = []string{"snapshots", "packs", "index", "keys", "locks", "blobs"}

// ListItem is a file (or blob) of the repository.
type ListItem struct {
	ID   string `json:"id"`
	Size int64  `json:"size,omitempty"`
	Type string `json:"type,omitempty"` // blobs: data or tree
}

// List lists the files of one kind (snapshots, packs, index, keys,
// locks) by name and size, or the indexed blobs with their type and
// plaintext length, sorted by ID.
func (r *Repository) List(ctx context.Context, kind string) ([]ListItem, error) {
	out := []ListItem{}
	var t backend.FileType
	switch kind {
	case "snapshots":
		t = backend.Snapshot
	case "packs":
		t = backend.Pack
	case "index":
		t = backend.Index
	case "locks":
		t = backend.Lock
	case "keys":
		t = backend.Key
	case "blobs":
		for _, blobs := range r.repo.Index().Packs() {
			for _, b := range blobs {
				out = append(out, ListItem{ID: b.ID.String(), Size: int64(b.RawLength), Type: blobType(b.Type)})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	default:
		return nil, fmt.Errorf("list %q: want one of %s", kind, strings.Join(ListKinds, ", "))
	}
	files, err := r.repo.List(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	for id, size := range files {
		out = append(out, ListItem{ID: id.String(), Size: size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func blobType(t repository.BlobType) string {
	if t == repository.TreeBlob {
		return "tree"
	}
	return "data"
}

// CatKinds are the kinds Cat takes.
var CatKinds = []string{"config", "key", "snapshot", "index", "pack", "blob", "tree"}

// Cat returns one stored object, decrypted and verified, for debugging:
// config, key ID (the key file's JSON as stored: the master key stays
// sealed), snapshot ID, index ID, pack ID (its header: the blobs it
// holds and where), tree ID (the tree's JSON), or blob ID (a data blob's
// plaintext). IDs may be unique prefixes (snapshot also takes
// "latest"). Everything but a data blob is JSON.
func (r *Repository) Cat(ctx context.Context, kind, ref string) ([]byte, error) {
	if kind != "config" && ref == "" {
		return nil, fmt.Errorf("cat %s: give an ID", kind)
	}
	switch kind {
	case "config":
		return json.MarshalIndent(r.repo.Config(), "", "  ")
	case "snapshot":
		s, err := r.repo.FindSnapshot(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("cat snapshot: %w", err)
		}
		return json.MarshalIndent(s, "", "  ")
	case "key":
		id, _, err := r.resolveFile(ctx, backend.Key, ref)
		if err != nil {
			return nil, fmt.Errorf("cat key: %w", err)
		}
		b, err := backend.LoadFile(ctx, r.repo.Backend(), backend.Handle{Type: backend.Key, Name: id.String()}, backend.FileLimit(backend.Key))
		if err != nil {
			return nil, fmt.Errorf("cat key: %w", err)
		}
		return b, nil
	case "index":
		id, _, err := r.resolveFile(ctx, backend.Index, ref)
		if err != nil {
			return nil, fmt.Errorf("cat index: %w", err)
		}
		return r.repo.LoadFile(ctx, backend.Index, id)
	case "pack":
		id, size, err := r.resolveFile(ctx, backend.Pack, ref)
		if err != nil {
			return nil, fmt.Errorf("cat pack: %w", err)
		}
		blobs, err := r.repo.LoadPackHeader(ctx, id, size)
		if err != nil {
			return nil, fmt.Errorf("cat pack %s: %w", id.Short(), err)
		}
		type blob struct {
			ID         string `json:"id"`
			Type       string `json:"type"`
			Offset     uint32 `json:"offset"`
			Length     uint32 `json:"length"`
			RawLength  uint32 `json:"raw_length"`
			Compressed bool   `json:"compressed"`
			Inner      uint32 `json:"inner,omitempty"`
			SegmentRaw uint32 `json:"segment_raw,omitempty"`
		}
		out := make([]blob, 0, len(blobs))
		for _, b := range blobs {
			out = append(out, blob{b.ID.String(), blobType(b.Type), b.Offset, b.Length, b.RawLength, b.Compressed, b.Inner, b.SegmentRaw})
		}
		return json.MarshalIndent(map[string]any{"id": id.String(), "size": size, "blobs": out}, "", "  ")
	case "blob", "tree":
		h, err := r.resolveBlob(ref, kind == "tree")
		if err != nil {
			return nil, fmt.Errorf("cat %s: %w", kind, err)
		}
		b, err := r.repo.LoadBlob(ctx, h, nil)
		if err != nil {
			return nil, fmt.Errorf("cat %s %s: %w", kind, h.ID.Short(), err)
		}
		if h.Type == repository.TreeBlob {
			var v any
			if err := json.Unmarshal(b, &v); err == nil {
				return json.MarshalIndent(v, "", "  ")
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("cat %q: want one of %s", kind, strings.Join(CatKinds, ", "))
}

// resolveFile finds the file of type t whose name starts with prefix.
func (r *Repository) resolveFile(ctx context.Context, t backend.FileType, prefix string) (repository.ID, int64, error) {
	files, err := r.repo.List(ctx, t)
	if err != nil {
		return repository.ID{}, 0, err
	}
	var found []repository.ID
	for id := range files {
		if strings.HasPrefix(id.String(), strings.ToLower(prefix)) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return repository.ID{}, 0, fmt.Errorf("%s %q: no such file", t, prefix)
	case 1:
		return found[0], files[found[0]], nil
	}
	return repository.ID{}, 0, fmt.Errorf("%s %q: prefix matches %d files", t, prefix, len(found))
}

// resolveBlob finds the indexed blob whose ID starts with prefix (a
// tree with tree, else a data blob first, then a tree).
func (r *Repository) resolveBlob(prefix string, tree bool) (repository.BlobHandle, error) {
	prefix = strings.ToLower(prefix)
	var found []repository.BlobHandle
	for _, blobs := range r.repo.Index().Packs() {
		for _, b := range blobs {
			if strings.HasPrefix(b.ID.String(), prefix) && (!tree || b.Type == repository.TreeBlob) && !containsHandle(found, b.BlobHandle) {
				found = append(found, b.BlobHandle)
			}
		}
	}
	switch len(found) {
	case 0:
		return repository.BlobHandle{}, fmt.Errorf("blob %q: not in the index", prefix)
	case 1:
		return found[0], nil
	}
	return repository.BlobHandle{}, errors.New("blob " + prefix + ": prefix matches several blobs")
}

func containsHandle(hs []repository.BlobHandle, h repository.BlobHandle) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}
