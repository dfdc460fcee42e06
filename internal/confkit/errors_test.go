package confkit

import (
	"strings"
	"testing"
)

// Key paths in error messages: ordinary keys print as they are; a key
// from the file holding a newline, a control or bidi character, or
// invalid UTF-8 is quoted, so it can neither forge a line of `config
// check` output nor reorder the text after it on a terminal.
func TestJoinPathQuotesUnusualKeys(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"backup.jobs", "home", "backup.jobs.home"},
		{"backup.jobs.home.paths", "[0]", "backup.jobs.home.paths[0]"},
		{"backup.jobs", "bad name", "backup.jobs.bad name"},
		{"backup.jobs", "café", "backup.jobs.café"},
		{"backup.jobs", "a\nhostd.yaml:1:1: ok", `backup.jobs."a\nhostd.yaml:1:1: ok"`},
		{"backup.jobs", "evil\u202egpj.exe", `backup.jobs."evil\u202egpj.exe"`},
		{"backup.jobs", "\u2066x\u2069", `backup.jobs."\u2066x\u2069"`},
		{"backup.jobs", "tab\there", `backup.jobs."tab\there"`},
		{"backup.jobs", "\xff", `backup.jobs."\xff"`},
		{"backup.jobs", "\x1b[31mred", `backup.jobs."\x1b[31mred"`},
		{"", "a\nb", `"a\nb"`},
	}
	for _, tc := range tests {
		p := JoinPath(tc.a, tc.b)
		if p != tc.want {
			t.Errorf("JoinPath(%q, %q) = %s, want %s", tc.a, tc.b, p, tc.want)
		}
		// Quoted once: joining further keeps it.
		if got := JoinPath(p, "paths"); got != tc.want+".paths" {
			t.Errorf("JoinPath(%s, paths) = %s", p, got)
		}
		if got := (Error{File: "hostd.yaml", Path: p, Msg: "m"}).Error(); got != "hostd.yaml: "+tc.want+": m" {
			t.Errorf("error %s", got)
		}
	}
	// A path built without JoinPath is quoted whole.
	if got := (Error{File: "f", Path: "a.b\u202ec", Msg: "m"}).Error(); got != `f: "a.b\u202ec": m` {
		t.Errorf("error %s", got)
	}
}

// The same through the decoder: a map key holding a newline and a bidi
// control is quoted in the path.
func TestDecodeErrorEscapesKey(t *testing.T) {
	var s sample
	_, errs := Decode("hostd.yaml", []byte("jobs:\n  \"a\\nb\\u202e\":\n    every: soon\n"), &s)
	if len(errs) == 0 {
		t.Fatal("decoded")
	}
	got := errs.Error()
	if strings.ContainsAny(got, "\n\u202e") || !strings.Contains(got, `jobs."a\nb\u202e".every`) {
		t.Fatalf("error %q", got)
	}
}
