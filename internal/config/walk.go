package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/hostd/hostd/internal/confkit"
)

// walk visits every value of a config section in key order, calling visit
// with its key path and its key name (the last element). Disabled parts
// (an `enable: false` struct) are skipped. The fields of a type that
// decodes itself keep its path. visit returns false to not descend.
func walk(v reflect.Value, path, key string, visit func(path, key string, v reflect.Value) bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if !visit(path, key, v) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.CanAddr() && !Enabled(v.Addr().Interface()) {
			return
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
				sub, name = path, key
			}
			walk(v.Field(i), sub, name, visit)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			cp := reflect.New(v.Type().Elem()).Elem()
			cp.Set(v.MapIndex(k))
			walk(cp, confkit.JoinPath(path, k.String()), k.String(), visit)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), key, visit)
		}
	}
}
