package confkit

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Listen string        `yaml:"listen"`
	Every  time.Duration `yaml:"every"`
}

type upper string

func (u *upper) UnmarshalConfig(n *yaml.Node) error {
	if strings.ToUpper(n.Value) != n.Value {
		return errString("must be upper case")
	}
	*u = upper(n.Value)
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

type sample struct {
	Name   string           `yaml:"name"`
	Count  int              `yaml:"count"`
	Small  uint8            `yaml:"small"`
	Ratio  float64          `yaml:"ratio"`
	On     bool             `yaml:"on"`
	Tags   []string         `yaml:"tags"`
	Jobs   map[string]inner `yaml:"jobs"`
	Inner  inner            `yaml:"inner"`
	Ptr    *inner           `yaml:"ptr"`
	Code   upper            `yaml:"code"`
	Ignore string           `yaml:"-"`
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key with suggestion", "sec:\n  nmae: x\n", []string{`f.yaml:2:3: sec.nmae: unknown key "nmae" (did you mean "name"?)`}},
		{"unknown key listed", "sec:\n  zzzzzz: x\n", []string{`sec.zzzzzz: unknown key "zzzzzz" (known keys: code, count, inner, jobs, name, on, ptr, ratio, small, tags)`}},
		{"wrong type int", "sec:\n  count: many\n", []string{`f.yaml:2:10: sec.count: expected an integer, got "many"`}},
		{"overflow", "sec:\n  small: 300\n", []string{`f.yaml:2:10: sec.small: 300 is out of range`}},
		{"negative uint", "sec:\n  small: -1\n", []string{`sec.small: expected a non-negative integer`}},
		{"bool", "sec:\n  on: maybe\n", []string{`f.yaml:2:7: sec.on: expected true or false, got "maybe"`}},
		{"list expected", "sec:\n  tags: a\n", []string{`f.yaml:2:9: sec.tags: expected a list, got "a"`}},
		{"mapping expected", "sec:\n  inner: 3\n", []string{`sec.inner: expected a mapping, got "3"`}},
		{"nested in map", "sec:\n  jobs:\n    home:\n      every: 5x\n", []string{`f.yaml:4:14: sec.jobs.home.every: invalid duration "5x": unknown unit "x"`}},
		{"list item", "sec:\n  tags: [a, {b: c}]\n", []string{`f.yaml:2:13: sec.tags[1]: expected a string, got a mapping`}},
		{"unmarshaler", "sec:\n  code: abc\n", []string{`f.yaml:2:9: sec.code: must be upper case`}},
		{"duplicate key", "sec:\n  name: a\n  name: b\n", []string{`f.yaml:3:3: sec.name: key given twice`}},
		{"unknown section", "sce: {}\n", []string{`f.yaml:1:1: sce: unknown section "sce" (did you mean "sec"?)`}},
		{"all at once", "sec:\n  count: x\n  on: 2\n  bad: 1\n", []string{"sec.count", "sec.on", "sec.bad"}},
		{"empty", "  \n", []string{"f.yaml:1:1: config file is empty"}},
		{"only comments", "# nothing\n", []string{"config file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"f.yaml:1:1: expected a mapping of sections at the top level, got a list"}},
		{"not yaml", "sec: [\n", []string{"not valid YAML"}},
		{"tab indentation", "sec:\n\tname: x\n", []string{"f.yaml:2:1: not valid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			_, errs := DecodeSections("f.yaml", []byte(tc.doc), map[string]any{"sec": &s})
			if len(errs) < len(tc.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tc.want))
			}
			got := errs.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	s := sample{Name: "default", Count: 7, Inner: inner{Listen: "127.0.0.1:1", Every: time.Minute}}
	doc := `sec:
  count: 0x10
  ratio: 1.5
  on: true
  tags: [a, b]
  jobs:
    home: {listen: "127.0.0.1:2", every: 1d12h}
  inner:
    every: 2w
  ptr: {listen: ":3"}
  code: ABC
`
	dec, errs := DecodeSections("f.yaml", []byte(doc), map[string]any{"sec": &s})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if s.Name != "default" || s.Count != 16 || s.Ratio != 1.5 || !s.On || len(s.Tags) != 2 || s.Code != "ABC" {
		t.Errorf("decoded %+v", s)
	}
	if s.Inner.Listen != "127.0.0.1:1" || s.Inner.Every != 14*24*time.Hour {
		t.Errorf("inner defaults not kept: %+v", s.Inner)
	}
	if s.Jobs["home"].Every != 36*time.Hour || s.Ptr == nil || s.Ptr.Listen != ":3" {
		t.Errorf("jobs %+v ptr %+v", s.Jobs, s.Ptr)
	}
	if p := dec.Positions.Lookup("sec.jobs.home.every"); p != (Pos{7, 42}) {
		t.Errorf("position of sec.jobs.home.every = %v", p)
	}
	if p := dec.Positions.Lookup("sec.inner.listen"); p != (Pos{9, 5}) {
		t.Errorf("position of a default falls back to its parent: got %v", p)
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"15s", 15 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"15d", 15 * 24 * time.Hour, ""},
		{"1w", 7 * 24 * time.Hour, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"0", 0, ""},
		{"", 0, "empty duration"},
		{"10", 0, "missing unit"},
		{"5 parsecs", 0, "unknown unit"},
		{"-5s", 0, "expected a number"},
	}
	for _, tc := range cases {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestEncodeRedacts(t *testing.T) {
	type cfg struct {
		User     string        `yaml:"user"`
		Password string        `yaml:"password"`
		Every    time.Duration `yaml:"every"`
	}
	b, err := Marshal(cfg{User: "bob", Password: "hunter2", Every: 90 * time.Second}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "password: <redacted>") || !strings.Contains(got, "every: 1m30s") || !strings.Contains(got, "user: bob") {
		t.Errorf("encoded:\n%s", got)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("sec:\n  name: x\n  jobs:\n    a: {every: 1s}\n"))
	f.Add([]byte("sec: [\n"))
	f.Add([]byte("sec: &x {ptr: *x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		_, errs := DecodeSections("f.yaml", data, map[string]any{"sec": &s})
		for _, e := range errs {
			if e.Msg == "" || e.File != "f.yaml" {
				t.Fatalf("bad error %+v", e)
			}
		}
	})
}
