package config

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

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
		v, err := r.Resolve(ctx, s.Ref)
		if err != nil {
			errs = append(errs, confkit.Error{File: fileOr(c.File), Pos: c.Positions.Lookup(s.Path), Path: s.Path,
				Msg: fmt.Sprintf("secret cannot be resolved: %v", err)})
			continue
		}
		name, sub, _ := strings.Cut(s.Path, ".")
		if sv, ok := c.Sections[name].(SecretValidator); ok {
			if err := sv.ValidateSecret(sub, v); err != nil {
				errs = append(errs, confkit.Error{File: fileOr(c.File), Pos: c.Positions.Lookup(s.Path), Path: s.Path,
					Msg: fmt.Sprintf("secret %s: %v", s.Ref, err)})
			}
		}
		clear(v)
	}
	return errs
}

// SecretValidator is implemented by section configs (pointer receiver)
// whose secrets must have a form, as a literal value of the same key
// must: the proxy's server.link is a vless:// link. CheckSecrets calls
// ValidateSecret with each resolved value and its key path within the
// section ("server.link"). The error must not hold the value; it is
// reported at the key, naming the reference.
type SecretValidator interface {
	ValidateSecret(path string, value []byte) error
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
