package pattern

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseMatch(t *testing.T) {
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		// sh: (default) — * stops at /, **/ spans directories, a pattern
		// matches the path and everything below it.
		{"*.o", "/src/a.o", false},
		{"**/*.o", "/src/a.o", true},
		{"**/*.o", "/a.o", true},
		{"home/*/.cache", "/home/u/.cache", true},
		{"home/*/.cache", "/home/u/.cache/x/y", true},
		{"home/*/.cache", "/home/u/v/.cache", false},
		{"/home/**/.cache", "/home/u/v/.cache", true},
		{"home/u/", "/home/u", true}, // borg: sh "dir/" == "dir/**/"
		{"home/u/", "/home/u/x", true},
		{"sh:tmp", "/tmp/x", true},
		{"sh:tmp", "/tmpx", false},
		{"sh:file?.txt", "/file1.txt", true},
		{"sh:file[0-9].txt", "/file7.txt", true},
		{"sh:file[!0-9].txt", "/file7.txt", false},
		// fm: — / is not special, * crosses directories.
		{"fm:*.o", "/src/a.o", true},
		{"fm:home/*/junk", "/home/a/b/junk", true},
		{"fm:home", "/home/u", true},
		{"fm:home/", "/home", false},
		// re: — unanchored search on the path without leading slash.
		{"re:\\.bak$", "/x/y.bak", true},
		{"re:^home", "/home/x", true},
		{"re:^/home", "/home/x", false},
		// pp: path prefix on whole components; pf: full path.
		{"pp:/home/u", "/home/u/x", true},
		{"pp:/home/u", "/home/user", false},
		{"pf:/etc/passwd", "/etc/passwd", true},
		{"pf:/etc", "/etc/passwd", false},
		// Strings outside borg's prefix rule (more than two characters,
		// the third ':', the first two alphanumeric) are default-style
		// patterns, colon and all.
		{`C:\Users`, `/C:\Users`, true},
		{".a:b", "/.a:b", true},
		{"-x:y", "/-x:y", true},
		{"a:b", "/a:b", true},
		{"a:b:c", "/a:b:c", true},
		{"a b:c", "/a b:c", true},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"~"+tc.path, func(t *testing.T) {
			r, err := Parse(tc.pattern, "sh", Exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Match(tc.path); got != tc.want {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStyle(t *testing.T) {
	tests := []struct {
		pattern, defaultStyle, want string
	}{
		{"sh:x", "fm", "sh"},
		{"fm:x", "sh", "fm"},
		{"re:x", "sh", "re"},
		{"pp:x", "sh", "pp"},
		{"pf:x", "sh", "pf"},
		{"x", "fm", "fm"},
		{`C:\x`, "sh", "sh"},
		{".a:b", "re", "re"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			r, err := Parse(tc.pattern, tc.defaultStyle, Exclude)
			if err != nil {
				t.Fatal(err)
			}
			if r.Style != tc.want || r.Source != tc.pattern {
				t.Fatalf("style %q source %q, want %q %q", r.Style, r.Source, tc.want, tc.pattern)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // in the error
	}{
		{"re:(", `pattern "re:("`},
		{"", "empty"},
		{"sh:", `pattern "sh:": empty`},
		// borg's parse_pattern: two alphanumerics and ':' name a style,
		// and an unknown one is an error rather than a sh: pattern.
		{"zz:foo", `pattern "zz:foo": unknown pattern style: zz`},
		{"zz:", "unknown pattern style: zz"},
		{"SH:foo", "unknown pattern style: SH"},
		{"12:30", "unknown pattern style: 12"},
		{"é1:x", "unknown pattern style: é1"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			_, err := Parse(tc.pattern, "sh", Exclude)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ParseExcludes([]string{"ok", "zz:foo"}); err == nil || !strings.Contains(err.Error(), "exclude 1:") {
		t.Errorf("ParseExcludes error %v does not name exclude 1", err)
	}
}

func TestParseFile(t *testing.T) {
	in := `# keep the important cache
+ home/u/.cache/important
- home/*/.cache
P fm
! *.iso
R /home
-plain-exclude
`
	rules, err := parseFile(strings.NewReader(in), "patterns.lst")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMatcher(rules...)
	tests := []struct {
		path string
		want Action
	}{
		{"/home/u/.cache/important/a", Include},
		{"/home/u/.cache/other", Exclude},
		{"/data/x.iso", ExcludeNoRecurse},
		{"/plain-exclude", Exclude},
		{"/home/u/docs", None},
	}
	for _, tc := range tests {
		if got := m.Match(tc.path); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
	}
	if !m.HasIncludes() {
		t.Error("HasIncludes false")
	}
	if _, err := parseFile(strings.NewReader("+ ok\nP bogus\n"), "bad.lst"); err == nil || !strings.Contains(err.Error(), "bad.lst:2") {
		t.Errorf("error %v does not name bad.lst:2", err)
	}
}

func TestLoadFile(t *testing.T) {
	type check struct {
		path string
		want Action
	}
	tests := []struct {
		name   string
		in     string
		checks []check
		roots  []string
	}{
		{
			name: "no blank after the command",
			in:   "-tmp/foo\n+keep\n!**/*.iso\n",
			checks: []check{
				{"/tmp/foo", Exclude}, {"/tmp/foo/x", Exclude}, {"/tmp/bar", None},
				{"/keep/x", Include}, {"/data/a.iso", ExcludeNoRecurse},
			},
		},
		{
			name:   "blanks after the command",
			in:     "- tmp/foo\n-\t  tmp/bar\n  +   keep  \n",
			checks: []check{{"/tmp/foo", Exclude}, {"/tmp/bar", Exclude}, {"/keep", Include}},
		},
		{
			name:   "P without a blank, and lower case p",
			in:     "Pfm\n-*.o\np re\n-\\.bak$\n",
			checks: []check{{"/src/a.o", Exclude}, {"/x/y.bak", Exclude}, {"/x/y.c", None}},
		},
		{
			name:   "a style prefix beats P",
			in:     "P re\n- sh:home/*/.cache\n",
			checks: []check{{"/home/u/.cache/x", Exclude}, {"/home/u/v/.cache", None}},
		},
		{
			name:   "root paths in order, as written",
			in:     "R /home\n# comment\n- home/*/.cache\nR/srv\nr   /data dir  \nR relative/path\n",
			checks: []check{{"/home/u/.cache", Exclude}, {"/srv", None}},
			roots:  []string{"/home", "/srv", "/data dir", "relative/path"},
		},
		{
			name: "empty file",
			in:   "\n   \n# only a comment\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := LoadFile(strings.NewReader(tc.in), "patterns.lst")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Roots, tc.roots) {
				t.Errorf("roots %q, want %q", f.Roots, tc.roots)
			}
			m := NewMatcher(f.Rules...)
			for _, c := range tc.checks {
				if got := m.Match(c.path); got != c.want {
					t.Errorf("%s: %v, want %v", c.path, got, c.want)
				}
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // in the error
	}{
		// borg's parse_inclexcl_command: every line starts with a command.
		{"foo\n", `bad.lst:1: "foo": unknown command 'f'`},
		{"+ a\n# c\n\n*.o\n", `bad.lst:4: "*.o": unknown command '*'`},
		{"é\n", `unknown command 'é'`},
		// "plain" is the P command with the style "lain".
		{"plain-exclude\n", `bad.lst:1: "plain-exclude": unknown pattern style "lain-exclude"`},
		{"+ a\nP bogus\n", `bad.lst:2: "P bogus": unknown pattern style "bogus"`},
		{"P SH\n", `unknown pattern style "SH"`},
		// A command needs a value.
		{"-\n", `bad.lst:1: "-": command '-' has no value`},
		{"+ a\n- \t \n", `bad.lst:2: "-": command '-' has no value`},
		{"+\n", "command '+' has no value"},
		{"!\n", "command '!' has no value"},
		{"P\n", "command 'P' has no value"},
		{"R \n", "command 'R' has no value"},
		{"r\n", "command 'r' has no value"},
		// Parse's errors, with file and line.
		{"+ a\n- zz:foo\n", `bad.lst:2: pattern "zz:foo": unknown pattern style: zz`},
		{"!re:(\n", `bad.lst:1: pattern "re:("`},
		{"- sh:\n", `bad.lst:1: pattern "sh:": empty`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			f, err := LoadFile(strings.NewReader(tc.in), "bad.lst")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if f != nil {
				t.Errorf("file %+v returned with the error", f)
			}
		})
	}
}

func ExampleLoadFile() {
	f, err := LoadFile(strings.NewReader("R /home\n+ home/u/.cache/keep\n- home/*/.cache\n"), "patterns.lst")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := NewMatcher(f.Rules...)
	fmt.Println(f.Roots, m.Match("/home/u/.cache/x"), m.Match("/home/u/.cache/keep/y"))
	// Output: [/home] exclude include
}

func FuzzParseFile(f *testing.F) {
	f.Add("+ a\n- b/**\n! re:c$\nP fm\n-x*\nR /r\n")
	f.Add("[")
	f.Add("-[\nzz:x\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := parseFile(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		m := NewMatcher(rules...)
		_ = m.Match("/some/path/x")
	})
}

// parseFile is LoadFile's rules, for the tests of rule parsing.
func parseFile(r io.Reader, name string) ([]Rule, error) {
	f, err := LoadFile(r, name)
	if err != nil {
		return nil, err
	}
	return f.Rules, nil
}
