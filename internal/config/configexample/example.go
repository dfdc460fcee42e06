package configexample

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/confkit"
)

// Generator renders the annotated example config from the config
// structs themselves: every option with its default value and the doc
// comment of its field, read from the Go source. The shipped
// configs/hostd.example.yaml is its output, kept current by a test.
type Generator struct {
	// SrcRoot is the module's root directory.
	SrcRoot string
	// Module is the module path ("github.com/hostd/hostd").
	Module string
	// Header is written first.
	Header string

	docs map[string]map[string][]string // "pkgpath.Type" -> field -> doc lines
}

// Generate renders hostd, secrets and each section, in order.
func (g *Generator) Generate(sections []config.Section, getenv func(string) string) ([]byte, error) {
	g.docs = map[string]map[string][]string{}
	var b bytes.Buffer
	b.WriteString(g.Header)
	core := config.DefaultCore(getenv)
	// Environment-dependent defaults are shown as comments.
	core.StateDir, core.Socket = "", ""
	all := []struct {
		name, doc string
		v         any
	}{
		{"hostd", "hostd itself: logging, state, the local API socket and the HTTP listener.", &core},
		{"secrets", "How secret references (sops:FILE#key, file:PATH, cred:NAME, env:NAME) are resolved.", &config.Secrets{}},
	}
	for _, s := range sections {
		all = append(all, struct {
			name, doc string
			v         any
		}{s.Name, "", s.Default()})
	}
	for _, s := range all {
		v := reflect.ValueOf(s.v).Elem()
		doc := s.doc
		if doc == "" {
			d, err := g.typeDoc(v.Type())
			if err != nil {
				return nil, err
			}
			doc = d
		}
		b.WriteString("\n")
		for _, l := range wrap(doc) {
			b.WriteString("# " + l + "\n")
		}
		b.WriteString(s.name + ":\n")
		var eff reflect.Value
		if d, ok := s.v.(config.Defaulter); ok {
			eff = reflect.ValueOf(d.Effective())
			for eff.Kind() == reflect.Pointer {
				eff = eff.Elem()
			}
			if eff.Type() != v.Type() {
				return nil, fmt.Errorf("section %s: Effective returns %s, not %s", s.name, eff.Type(), v.Type())
			}
		}
		if err := g.emitStruct(&b, v, eff, 1, false); err != nil {
			return nil, fmt.Errorf("section %s: %w", s.name, err)
		}
	}
	// The state directory and socket depend on how hostd runs; the
	// example shows the system service's values, commented out.
	out := strings.Replace(b.String(), "  state_dir: \"\"\n", "  # state_dir: "+config.DefaultStateDirRoot+"\n", 1)
	out = strings.Replace(out, "  socket: \"\"\n", "  # socket: "+config.DefaultSocketRoot+"\n", 1)
	return []byte(out), nil
}

func wrap(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	return out
}

func (g *Generator) pkgDir(t reflect.Type) (string, bool) {
	p := t.PkgPath()
	if p != g.Module && !strings.HasPrefix(p, g.Module+"/") {
		return "", false
	}
	return filepath.Join(g.SrcRoot, strings.TrimPrefix(strings.TrimPrefix(p, g.Module), "/")), true
}

// load parses the package of t and records every struct's field docs.
func (g *Generator) load(t reflect.Type) error {
	key := t.PkgPath()
	if _, ok := g.docs[key+".__loaded"]; ok {
		return nil
	}
	g.docs[key+".__loaded"] = nil
	dir, ok := g.pkgDir(t)
	if !ok {
		return nil
	}
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		return fmt.Errorf("parse %s: %w", dir, err)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					fields := map[string][]string{}
					doc := ts.Doc
					if doc == nil {
						doc = gd.Doc
					}
					if doc != nil {
						fields[""] = wrap(doc.Text())
					}
					if st, ok := ts.Type.(*ast.StructType); ok {
						for _, fl := range st.Fields.List {
							cg := fl.Doc
							if cg == nil {
								cg = fl.Comment
							}
							if cg == nil {
								continue
							}
							for _, n := range fl.Names {
								fields[n.Name] = wrap(cg.Text())
							}
						}
					}
					g.docs[key+"."+ts.Name.Name] = fields
				}
			}
		}
	}
	return nil
}

func (g *Generator) fieldDocs(t reflect.Type) (map[string][]string, error) {
	if err := g.load(t); err != nil {
		return nil, err
	}
	return g.docs[t.PkgPath()+"."+t.Name()], nil
}

func (g *Generator) typeDoc(t reflect.Type) (string, error) {
	d, err := g.fieldDocs(t)
	if err != nil {
		return "", err
	}
	return strings.Join(d[""], "\n"), nil
}

var unmarshalerType = reflect.TypeFor[confkit.Unmarshaler]()

// isLeaf reports whether a value is written as one YAML value rather than
// a block of keys.
func isLeaf(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Duration]() || reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		return false
	case reflect.Pointer:
		return isLeaf(t.Elem())
	case reflect.Map, reflect.Slice:
		return isLeaf(t.Elem())
	}
	return true
}

func elemStruct(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, t.Kind() == reflect.Struct && !isLeaf(t)
}

// emitStruct writes the keys of a struct value. In an element example
// (sample), zero values are left blank: the element's defaults are applied
// by its service and stated in the comments. eff, when valid, is the same
// struct with the defaults its service fills in (Defaulter); a key whose
// value there differs is written commented out with that real default, so
// the example states it without setting it.
func (g *Generator) emitStruct(b *bytes.Buffer, v, eff reflect.Value, depth int, sample bool) error {
	t := v.Type()
	docs, err := g.fieldDocs(t)
	if err != nil {
		return err
	}
	ind := strings.Repeat("  ", depth)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		var efv reflect.Value
		if eff.IsValid() {
			efv = eff.Field(i)
		}
		if strings.Contains(opts, "inline") {
			if err := g.emitStruct(b, fv, efv, depth, sample); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		for _, l := range docs[f.Name] {
			b.WriteString(ind + "# " + l + "\n")
		}
		if efv.IsValid() && !reflect.DeepEqual(fv.Interface(), efv.Interface()) {
			var sub bytes.Buffer
			if err := g.emitValue(&sub, name, efv, depth, sample); err != nil {
				return err
			}
			for _, l := range strings.Split(strings.TrimRight(sub.String(), "\n"), "\n") {
				b.WriteString(ind + "# " + strings.TrimPrefix(l, ind) + "\n")
			}
			continue
		}
		if err := g.emitValue(b, name, fv, depth, sample); err != nil {
			return err
		}
	}
	return nil
}

// emitValue writes one key and its value.
func (g *Generator) emitValue(b *bytes.Buffer, name string, fv reflect.Value, depth int, sample bool) error {
	ind := strings.Repeat("  ", depth)
	ft := fv.Type()
	for ft.Kind() == reflect.Pointer && !isLeaf(ft) {
		ft = ft.Elem()
		if fv.IsNil() {
			fv = reflect.New(ft).Elem()
		} else {
			fv = fv.Elem()
		}
	}
	switch {
	case ft.Kind() == reflect.Struct && !isLeaf(ft):
		b.WriteString(ind + name + ":\n")
		if err := g.emitStruct(b, fv, reflect.Value{}, depth+1, sample); err != nil {
			return err
		}
	case (ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice) && fv.Len() == 0:
		empty := "{}"
		if ft.Kind() == reflect.Slice {
			empty = "[]"
		}
		b.WriteString(ind + name + ": " + empty + "\n")
		if et, ok := elemStruct(ft.Elem()); ok {
			var sub bytes.Buffer
			if ft.Kind() == reflect.Map {
				sub.WriteString(ind + "  NAME:\n")
				if err := g.emitStruct(&sub, reflect.New(et).Elem(), reflect.Value{}, depth+2, true); err != nil {
					return err
				}
			} else {
				if err := g.emitStruct(&sub, reflect.New(et).Elem(), reflect.Value{}, depth+2, true); err != nil {
					return err
				}
				s := sub.String()
				sub.Reset()
				sub.WriteString(ind + "  -" + strings.TrimPrefix(s, ind+"   "))
			}
			b.WriteString(ind + "# For example:\n")
			b.WriteString(ind + "# " + name + ":\n")
			for _, l := range strings.Split(strings.TrimRight(sub.String(), "\n"), "\n") {
				b.WriteString(ind + "#" + strings.TrimPrefix(l, ind) + "\n")
			}
		}
	case sample && fv.IsZero():
		b.WriteString(ind + name + ":\n")
	default:
		out, err := yaml.Marshal(confkit.Encode(fv.Interface(), false))
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		val := strings.TrimRight(string(out), "\n")
		if strings.Contains(val, "\n") {
			b.WriteString(ind + name + ":\n")
			for _, l := range strings.Split(val, "\n") {
				b.WriteString(ind + "  " + l + "\n")
			}
		} else {
			b.WriteString(ind + name + ": " + val + "\n")
		}
	}
	return nil
}
