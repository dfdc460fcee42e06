package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/safefile"
)

// Section describes one service's config section to the loader.
type Section struct {
	// Name is the section's key in the file and the service's name.
	Name string
	// Default returns a pointer to a new config struct holding defaults.
	Default func() any
}

// Defaulter is implemented by section configs that leave keys zero in the
// file and fill in their defaults when used (a backup job's compression 0
// means level 3). Effective returns a pointer to a copy with every such
// default filled in. `hostd config show` prints it, and the example shows
// each such key, commented out, with its real default.
type Defaulter interface {
	Effective() any
}

// effective returns a section config with its defaults filled in.
func effective(section any) any {
	if d, ok := section.(Defaulter); ok {
		return d.Effective()
	}
	return section
}

// Validator is implemented by section config structs (pointer receiver).
type Validator interface {
	Validate(v *confkit.Validator)
}

// Config is one loaded, validated config.
type Config struct {
	// File is the config file; empty for embedded defaults.
	File string
	// Core is the `hostd` section.
	Core Core
	// Secrets is the `secrets` section.
	Secrets Secrets
	// Sections maps each service name to a pointer to its config struct.
	Sections map[string]any
	// Positions of every key in the file.
	Positions confkit.Positions
	order     []string
}

// Names returns the service section names in registration order.
func (c *Config) Names() []string { return c.order }

// Defaults returns the config used when there is no config file.
func Defaults(sections []Section, getenv func(string) string) (*Config, error) {
	c := newConfig(sections, getenv)
	if errs := c.validate(""); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func newConfig(sections []Section, getenv func(string) string) *Config {
	c := &Config{Core: DefaultCore(getenv), Sections: map[string]any{}, Positions: confkit.Positions{}}
	c.Secrets.AgeKeyFile = getenv("SOPS_AGE_KEY_FILE")
	for _, s := range sections {
		c.Sections[s.Name] = s.Default()
		c.order = append(c.order, s.Name)
	}
	return c
}

// Load reads, decodes and validates file. On failure the error is a
// confkit.Errors holding every problem.
func Load(file string, sections []Section, getenv func(string) string) (*Config, error) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data, sections, getenv)
}

// ReadFile reads a config file through safefile: a regular file of at
// most safefile.ConfigLimit bytes. A FIFO, device or directory is refused
// at once, without waiting for a writer. The error is a confkit.Errors
// naming the file.
func ReadFile(file string) ([]byte, error) {
	data, err := safefile.Read(file, safefile.ConfigLimit)
	if err == nil {
		return data, nil
	}
	msg := err.Error()
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg = "config file does not exist"
	case errors.Is(err, safefile.ErrNotRegular), errors.Is(err, safefile.ErrTooLarge):
		// safefile's message starts with the path, which Error adds.
		msg = strings.TrimPrefix(msg, file+": ")
	case errors.As(err, &pe):
		msg = pe.Err.Error()
	}
	return nil, confkit.Errors{{File: file, Msg: msg}}
}

// Parse decodes and validates config data read from file.
func Parse(file string, data []byte, sections []Section, getenv func(string) string) (*Config, error) {
	c, errs := parse(file, data, sections, getenv)
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// Check loads file as Load does and, when resolveSecrets is set, also
// resolves every secret reference of the enabled sections, so that one
// run reports every problem of the file at once, in file order. The
// Config is returned only when there is no problem.
func Check(ctx context.Context, file string, sections []Section, getenv func(string) string, resolveSecrets bool) (*Config, confkit.Errors) {
	data, err := ReadFile(file)
	if err != nil {
		return nil, err.(confkit.Errors)
	}
	c, errs := parse(file, data, sections, getenv)
	if c != nil && resolveSecrets {
		errs = append(errs, c.CheckSecrets(ctx, getenv)...)
		sortErrors(errs)
		errs = dedupe(errs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// parse decodes and validates data. The Config is nil only when the file
// could not be decoded at all; otherwise it is returned with the problems
// found, so that its secret references can be checked too.
func parse(file string, data []byte, sections []Section, getenv func(string) string) (*Config, confkit.Errors) {
	c := newConfig(sections, getenv)
	c.File = file
	targets := map[string]any{"hostd": &c.Core, "secrets": &c.Secrets}
	for name, v := range c.Sections {
		targets[name] = v
	}
	dec, errs := confkit.DecodeSections(file, data, targets)
	if dec != nil {
		c.Positions = dec.Positions
	}
	if dec == nil {
		return nil, errs
	}
	errs = append(errs, c.validate(file)...)
	if len(errs) > 0 {
		sortErrors(errs)
		return c, dedupe(errs)
	}
	return c, nil
}

// sortErrors puts errors in file order; those without a position last.
func sortErrors(errs confkit.Errors) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.Line == 0 || b.Line == 0 {
			return a.Line != 0 && b.Line == 0
		}
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
}

func dedupe(errs confkit.Errors) confkit.Errors {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// validate runs every section's validation and the cross-section checks.
func (c *Config) validate(file string) confkit.Errors {
	var fes []confkit.FieldError
	v := confkit.NewValidator("hostd")
	c.Core.Validate(v)
	fes = append(fes, v.Errors()...)
	for _, name := range c.order {
		if !Enabled(c.Sections[name]) {
			continue
		}
		if sv, ok := c.Sections[name].(Validator); ok {
			v := confkit.NewValidator(name)
			sv.Validate(v)
			fes = append(fes, v.Errors()...)
		}
	}
	fes = append(fes, c.checkListeners()...)
	out := make(confkit.Errors, 0, len(fes))
	for _, fe := range fes {
		out = append(out, confkit.Error{File: fileOr(file), Pos: c.Positions.Lookup(fe.Path), Path: fe.Path, Msg: fe.Msg})
	}
	return out
}

func fileOr(f string) string {
	if f == "" {
		return "(defaults)"
	}
	return f
}

// Enabled reports whether a section config is turned on: its `enable`
// field, or true when it has none.
func Enabled(section any) bool {
	v := reflect.ValueOf(section)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return true
	}
	if e, ok := v.Addr().Interface().(interface{ IsEnabled() bool }); ok {
		return e.IsEnabled()
	}
	f := v.FieldByName("Enable")
	if !f.IsValid() || f.Kind() != reflect.Bool {
		return true
	}
	return f.Bool()
}

// listener is one listen address found in the config.
type listener struct {
	path string
	addr string
}

// checkListeners reports two enabled listeners on one port.
func (c *Config) checkListeners() []confkit.FieldError {
	var ls []listener
	if c.Core.HTTP.Listen != "" {
		ls = append(ls, listener{"hostd.http.listen", c.Core.HTTP.Listen})
	}
	for _, name := range c.order {
		if Enabled(c.Sections[name]) {
			ls = append(ls, findListeners(reflect.ValueOf(c.Sections[name]), name)...)
		}
	}
	var out []confkit.FieldError
	byPort := map[string][]listener{}
	for _, l := range ls {
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil || port == "0" {
			continue
		}
		byPort[port] = append(byPort[port], l)
	}
	for port, group := range byPort {
		for i := 1; i < len(group); i++ {
			for j := 0; j < i; j++ {
				if overlaps(group[i].addr, group[j].addr) {
					out = append(out, confkit.FieldError{Path: group[i].path,
						Msg: fmt.Sprintf("port %s is also used by %s (%s)", port, group[j].path, group[j].addr)})
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// overlaps reports whether two host:port listeners on the same port clash:
// same host, or either binds every address.
func overlaps(a, b string) bool {
	ha, _, _ := net.SplitHostPort(a)
	hb, _, _ := net.SplitHostPort(b)
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// findListeners finds the non-empty string fields of an enabled config
// value whose key is "listen" or ends in "_listen".
func findListeners(v reflect.Value, path string) []listener {
	var out []listener
	walk(v, path, path, func(path, key string, v reflect.Value) bool {
		if v.Kind() == reflect.String && (key == "listen" || strings.HasSuffix(key, "_listen")) && v.String() != "" {
			out = append(out, listener{path, v.String()})
		}
		return true
	})
	return out
}

// Changed returns the service sections whose effective config differs.
func Changed(old, cur *Config) []string {
	var out []string
	for _, name := range cur.order {
		if !reflect.DeepEqual(old.Sections[name], cur.Sections[name]) {
			out = append(out, name)
		}
	}
	return out
}

// Show returns the effective config as YAML with defaults filled in and
// secret values redacted.
func (c *Config) Show() ([]byte, error) {
	var b bytes.Buffer
	write := func(name string, v any) error {
		out, err := confkit.Marshal(map[string]any{name: v}, true)
		if err != nil {
			return fmt.Errorf("encode section %s: %w", name, err)
		}
		b.Write(out)
		return nil
	}
	if err := write("hostd", c.Core); err != nil {
		return nil, err
	}
	if err := write("secrets", c.Secrets); err != nil {
		return nil, err
	}
	for _, name := range c.order {
		if err := write(name, effective(c.Sections[name])); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// ShowJSON returns what Show does as one JSON object, keys in the same
// order, secrets redacted the same way.
func (c *Config) ShowJSON() ([]byte, error) {
	y, err := c.Show()
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(y, &doc); err != nil {
		return nil, fmt.Errorf("convert config to JSON: %w", err)
	}
	var b bytes.Buffer
	if len(doc.Content) == 1 {
		if err := writeJSON(&b, doc.Content[0]); err != nil {
			return nil, fmt.Errorf("convert config to JSON: %w", err)
		}
	} else {
		b.WriteString("{}")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("convert config to JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writeJSON writes a YAML node as JSON, keeping the order of keys.
func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return writeJSON(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := writeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, e := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		switch n.Tag {
		case "!!null":
			b.WriteString("null")
			return nil
		case "!!bool", "!!int", "!!float":
			if err := n.Decode(&v); err != nil {
				return err
			}
		default:
			v = n.Value
		}
		out, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(out)
	}
	return nil
}
