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
		if err := r.Check(ctx, s.Ref); err != nil {
			errs = append(errs, confkit.Error{File: fileOr(c.File), Pos: c.Positions.Lookup(s.Path), Path: s.Path,
				Msg: fmt.Sprintf("secret cannot be resolved: %v", err)})
		}
	}
	return errs
}

// findRefs walks a config value for secrets.Ref fields. A config type that
// decodes itself (a value-or-reference) keeps its parent's path.
func findRefs(v reflect.Value, path string) []SecretRef {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Type() == refType {
		if v.String() == "" {
			return nil
		}
		return []SecretRef{{Path: path, Ref: secrets.Ref(v.String())}}
	}
	var out []SecretRef
	switch v.Kind() {
	case reflect.Struct:
		if v.CanAddr() && !Enabled(v.Addr().Interface()) {
			return nil
		}
		selfDecoding := reflect.PointerTo(v.Type()).Implements(reflect.TypeFor[confkit.Unmarshaler]())
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			sub := confkit.JoinPath(path, name)
			if selfDecoding {
				sub = path
			}
			out = append(out, findRefs(v.Field(i), sub)...)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			cp := reflect.New(v.Type().Elem()).Elem()
			cp.Set(v.MapIndex(k))
			out = append(out, findRefs(cp, confkit.JoinPath(path, k.String()))...)
		}
	case reflect.Slice:
		for i := range v.Len() {
			out = append(out, findRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}
