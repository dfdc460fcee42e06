package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/hostd/hostd/internal/confkit"
)

// Section describes one service's config section to the loader.
type Section struct {
	// Name is the section's key in the file and the service's name.
	Name string
	// Default returns a pointer to a new config struct holding defaults.
	Default func() any
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
	data, err := os.ReadFile(file)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		if errors.Is(err, fs.ErrNotExist) {
			msg = "config file does not exist"
		}
		return nil, confkit.Errors{{File: file, Msg: msg}}
	}
	return Parse(file, data, sections, getenv)
}

// Parse decodes and validates config data read from file.
func Parse(file string, data []byte, sections []Section, getenv func(string) string) (*Config, error) {
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
		sort.SliceStable(errs, func(i, j int) bool {
			a, b := errs[i].Pos, errs[j].Pos
			if a.Line == 0 || b.Line == 0 {
				return a.Line != 0 && b.Line == 0
			}
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, dedupe(errs)
	}
	return c, nil
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
		if err := write(name, c.Sections[name]); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
