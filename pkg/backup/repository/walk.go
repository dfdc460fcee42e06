package repository

import (
	"context"
	"errors"
	"path"
)

// ErrSkipDir, returned by a WalkFunc for a directory, skips its contents.
var ErrSkipDir = errors.New("skip directory")

// WalkFunc is called for each node with its absolute path in the snapshot.
type WalkFunc func(p string, n *Node) error

// WalkTree calls fn for every node below tree id, depth first in name
// order, with paths starting at prefix ("/" for a snapshot root).
func (r *Repository) WalkTree(ctx context.Context, id ID, prefix string, fn WalkFunc) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &t.Nodes[i]
		p := path.Join(prefix, string(n.Name))
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == NodeDir {
			if err := r.WalkTree(ctx, *n.Subtree, p, fn); err != nil {
				return err
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
