package pattern

import (
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

func TestParseErrors(t *testing.T) {
	for _, p := range []string{"re:(", "", "sh:"} {
		if _, err := Parse(p, "sh", Exclude); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestParseFile(t *testing.T) {
	in := `# keep the important cache
+ home/u/.cache/important
- home/*/.cache
P fm
! *.iso
R /home
plain-exclude
`
	rules, err := ParseFile(strings.NewReader(in), "patterns.lst")
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
	if _, err := ParseFile(strings.NewReader("+ ok\nP bogus\n"), "bad.lst"); err == nil || !strings.Contains(err.Error(), "bad.lst:2") {
		t.Errorf("error %v does not name bad.lst:2", err)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("+ a\n- b/**\n! re:c$\nP fm\nx*\n")
	f.Add("[")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseFile(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		m := NewMatcher(rules...)
		_ = m.Match("/some/path/x")
	})
}
