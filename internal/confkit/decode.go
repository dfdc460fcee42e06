package confkit

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Unmarshaler is implemented by config types that decode themselves from a
// YAML node (a secret reference, a byte size, a schedule).
type Unmarshaler interface {
	UnmarshalConfig(n *yaml.Node) error
}

// Positions maps key paths to where their values are in the file.
type Positions map[string]Pos

// Lookup returns the position of path, or of its nearest ancestor that has
// one.
func (p Positions) Lookup(path string) Pos {
	for path != "" {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Pos{}
}

// Decoded is the result of decoding one file.
type Decoded struct {
	Positions Positions
	// Root is the document's top mapping, for callers that inspect raw keys.
	Root *yaml.Node
}

var durationType = reflect.TypeFor[time.Duration]()
var unmarshalerType = reflect.TypeFor[Unmarshaler]()

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Decode strictly decodes the YAML document data into out (a pointer to a
// struct already holding defaults). All problems are returned together,
// each with file:line:col and key path.
func Decode(file string, data []byte, out any) (*Decoded, Errors) {
	d := &decoder{file: file, pos: Positions{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{File: file, Pos: Pos{1, 1}, Msg: "config file is empty"}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, Errors{{File: file, Pos: Pos{1, 1}, Msg: "config file is empty"}}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, Errors{{File: file, Pos: Pos{1, 1}, Msg: "config file is empty"}}
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Pos: pos(root), Msg: fmt.Sprintf("expected a mapping of sections at the top level, got %s", kindName(root))}}
	}
	d.decode(root, reflect.ValueOf(out).Elem(), "")
	return &Decoded{Positions: d.pos, Root: root}, d.errs
}

// DecodeNode decodes one node into out with the same rules as Decode, for
// Unmarshaler implementations that hold nested config.
func DecodeNode(n *yaml.Node, out any) error {
	d := &decoder{pos: Positions{}}
	d.decode(n, reflect.ValueOf(out).Elem(), "")
	if len(d.errs) > 0 {
		return errors.New(d.errs[0].Msg)
	}
	return nil
}

func yamlError(file string, err error) Error {
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = "yaml: " + te.Errors[0]
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{File: file, Pos: Pos{line, 1}, Msg: "not valid YAML: " + m[2]}
	}
	return Error{File: file, Pos: Pos{1, 1}, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

type decoder struct {
	file string
	pos  Positions
	errs Errors
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, Error{File: d.file, Pos: pos(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.pos[path] = pos(n)
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalConfig(n); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errorf(n, path, "expected a duration such as 30s or 15d, got %s", kindName(n))
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

type fieldInfo struct {
	index []int
	name  string
}

func structFields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range structFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldInfo{index: []int{i}, name: name})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := structFields(v.Type())
	byName := make(map[string]fieldInfo, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			d.errorf(k, path, "merge keys (<<) are not supported")
			continue
		}
		sub := JoinPath(path, k.Value)
		f, ok := byName[k.Value]
		if !ok {
			d.errs = append(d.errs, Error{File: d.file, Pos: pos(k), Path: sub, Msg: unknownKeyMsg(k.Value, fields)})
			continue
		}
		if seen[k.Value] {
			d.errorf(k, sub, "key given twice")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.FieldByIndex(f.index), sub)
	}
}

func unknownKeyMsg(key string, fields []fieldInfo) string {
	names := make([]string, 0, len(fields))
	best, bestDist := "", 3
	for _, f := range fields {
		names = append(names, f.name)
		if dist := editDistance(key, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, best)
	}
	sort.Strings(names)
	return fmt.Sprintf("unknown key %q (known keys: %s)", key, strings.Join(names, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "internal: map keys must be strings")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := JoinPath(path, k.Value)
		if seen[k.Value] {
			d.errorf(k, sub, "key given twice")
			continue
		}
		seen[k.Value] = true
		elem := reflect.New(v.Type().Elem()).Elem()
		if existing := v.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())); existing.IsValid() {
			elem.Set(existing)
		}
		d.decode(val, elem, sub)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", typeName(v.Type()), kindName(n))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.errorf(n, path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "expected an integer, got %q", n.Value)
			return
		}
		if v.OverflowInt(i) {
			d.errorf(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "expected a non-negative integer, got %q", n.Value)
			return
		}
		if v.OverflowUint(u) {
			d.errorf(n, path, "%d is out of range", u)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!float" && n.Tag != "!!int") || math.IsNaN(f) {
			d.errorf(n, path, "expected a number, got %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// DecodeSections strictly decodes a file whose top level is a mapping of
// named sections. Each value in sections is a pointer to a struct holding
// that section's defaults; a section missing from the file keeps them.
func DecodeSections(file string, data []byte, sections map[string]any) (*Decoded, Errors) {
	d := &decoder{file: file, pos: Positions{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{File: file, Pos: Pos{1, 1}, Msg: "config file is empty"}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, Errors{{File: file, Pos: Pos{1, 1}, Msg: "config file is empty"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Pos: pos(root), Msg: fmt.Sprintf("expected a mapping of sections at the top level, got %s", kindName(root))}}
	}
	known := make([]fieldInfo, 0, len(sections))
	for name := range sections {
		known = append(known, fieldInfo{name: name})
	}
	sort.Slice(known, func(i, j int) bool { return known[i].name < known[j].name })
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		target, ok := sections[k.Value]
		if !ok {
			d.errs = append(d.errs, Error{File: file, Pos: pos(k), Path: k.Value, Msg: strings.Replace(unknownKeyMsg(k.Value, known), "unknown key", "unknown section", 1)})
			continue
		}
		if seen[k.Value] {
			d.errorf(k, k.Value, "section given twice")
			continue
		}
		seen[k.Value] = true
		d.decode(val, reflect.ValueOf(target).Elem(), k.Value)
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].Pos, d.errs[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return &Decoded{Positions: d.pos, Root: root}, d.errs
}
