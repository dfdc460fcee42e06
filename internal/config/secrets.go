package config

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/secrets"
)

var refType = reflect.TypeFor[secrets.Ref]()

// SecretRef is one secret reference found in the config.
type SecretRef struct {
	Path string
	Ref  secrets.Ref
}

// SecretRefs lists the secret references of the enabled sections, in key
// order.
func (c *Config) SecretRefs() []SecretRef {
	var out []SecretRef
	for _, name := range c.order {
		if Enabled(c.Sections[name]) {
			out = append(out, findRefs(reflect.ValueOf(c.Sections[name]), name)...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// CheckSecrets resolves every secret reference of the enabled sections and
// reports those that cannot be resolved, at their place in the file. The
// daemon does not do this at start: a service whose secret is missing runs
// degraded and says why, while the rest of hostd runs. `hostd config
// check` does, so a missing secret is caught before a deploy.
func (c *Config) CheckSecrets(ctx context.Context, getenv func(string) string) confkit.Errors {
	base := ""
	if c.File != "" {
		base = filepath.Dir(c.File)
	}
	r := secrets.NewResolver(base, c.Secrets.AgeKeyFile)
	if getenv != nil {
		r.Getenv = getenv
	}
	var errs confkit.Errors
	for _, s := range c.SecretRefs() {
		if err := r.Check(ctx, s.Ref); err != nil {
			errs = append(errs, confkit.Error{File: fileOr(c.File), Pos: c.Positions.Lookup(s.Path), Path: s.Path,
				Msg: fmt.Sprintf("secret cannot be resolved: %v", err)})
		}
	}
	return errs
}

// findRefs finds the secrets.Ref values of an enabled config value.
func findRefs(v reflect.Value, path string) []SecretRef {
	var out []SecretRef
	walk(v, path, path, func(path, _ string, v reflect.Value) bool {
		if v.Type() == refType {
			if v.String() != "" {
				out = append(out, SecretRef{Path: path, Ref: secrets.Ref(v.String())})
			}
			return false
		}
		return true
	})
	return out
}
