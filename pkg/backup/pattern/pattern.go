package pattern

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Action is what a matching rule does.
type Action int

// Actions; None means no rule matched.
const (
	None Action = iota
	Include
	Exclude
	ExcludeNoRecurse
)

func (a Action) String() string {
	return [...]string{"none", "include", "exclude", "exclude-norecurse"}[a]
}

// Rule is one pattern with its action.
type Rule struct {
	Action Action
	Style  string // "sh", "fm", "re", "pp", "pf"
	Source string // the pattern as written, for messages
	match  func(p string) bool
}

// Match reports whether the rule's pattern matches p (an absolute or
// relative slash path).
func (r Rule) Match(p string) bool { return r.match(strings.TrimLeft(p, "/")) }

// Parse compiles one pattern with an optional "style:" prefix;
// defaultStyle applies when there is none.
func Parse(s, defaultStyle string, a Action) (Rule, error) {
	style, pat := defaultStyle, s
	if len(s) >= 3 && s[2] == ':' {
		switch s[:2] {
		case "sh", "fm", "re", "pp", "pf":
			style, pat = s[:2], s[3:]
		}
	}
	r := Rule{Action: a, Style: style, Source: s}
	if pat == "" {
		return r, fmt.Errorf("pattern %q: empty", s)
	}
	switch style {
	case "sh":
		re, err := regexp.Compile(translateShell(preparePath(pat, "**/")))
		if err != nil {
			return r, fmt.Errorf("pattern %q: %w", s, err)
		}
		r.match = func(p string) bool { return re.MatchString(p + "/") }
	case "fm":
		re, err := regexp.Compile(translateFnmatch(preparePath(pat, "*")))
		if err != nil {
			return r, fmt.Errorf("pattern %q: %w", s, err)
		}
		r.match = func(p string) bool { return re.MatchString(p + "/") }
	case "re":
		re, err := regexp.Compile(pat)
		if err != nil {
			return r, fmt.Errorf("pattern %q: %w", s, err)
		}
		r.match = re.MatchString
	case "pp":
		prefix := strings.TrimLeft(path.Clean("/"+pat), "/")
		r.match = func(p string) bool {
			return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
		}
	case "pf":
		full := strings.TrimLeft(path.Clean("/"+pat), "/")
		r.match = func(p string) bool { return p == full }
	default:
		return r, fmt.Errorf("pattern %q: unknown style %q (want sh, fm, re, pp or pf)", s, style)
	}
	return r, nil
}

// preparePath applies borg's rule: a pattern matches a path or anything
// below it; a pattern ending in "/" matches only what is below.
func preparePath(pat, wildcard string) string {
	trailing := strings.HasSuffix(pat, "/")
	p := strings.TrimLeft(path.Clean("/"+pat), "/")
	if trailing {
		// "dir/" matches the contents only.
		if wildcard == "*" {
			return p + "/*/"
		}
		return p + "/**/"
	}
	if wildcard == "*" {
		return p + "/*"
	}
	return p + "/**/"
}

// translateShell turns a sh: pattern into an anchored regexp: * and ?
// stop at "/", **/ matches any number of whole directories, a final **
// matches anything.
func translateShell(pat string) string {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch c {
		case '*':
			if i+1 < len(pat) && pat[i+1] == '*' {
				if i+2 == len(pat) {
					b.WriteString(`.*`)
					i++
					continue
				}
				if pat[i+2] == '/' {
					b.WriteString(`(?:[^/]*/)*`)
					i += 2
					continue
				}
			}
			b.WriteString(`[^/]*`)
		case '?':
			b.WriteString(`[^/]`)
		case '[':
			i = writeClass(&b, pat, i)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	return b.String()
}

// translateFnmatch is Python's fnmatch.translate: "/" is not special.
func translateFnmatch(pat string) string {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			i = writeClass(&b, pat, i)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	return b.String()
}

// writeClass copies a [...] class starting at pat[i] and returns the index
// of its closing bracket; an unclosed "[" is a literal.
func writeClass(b *strings.Builder, pat string, i int) int {
	j := i + 1
	if j < len(pat) && pat[j] == '!' {
		j++
	}
	if j < len(pat) && pat[j] == ']' {
		j++
	}
	for j < len(pat) && pat[j] != ']' {
		j++
	}
	if j >= len(pat) {
		b.WriteString(`\[`)
		return i
	}
	body := pat[i+1 : j]
	b.WriteByte('[')
	if strings.HasPrefix(body, "!") {
		b.WriteByte('^')
		body = body[1:]
	}
	b.WriteString(strings.ReplaceAll(body, `\`, `\\`))
	b.WriteByte(']')
	return j
}

// Matcher holds rules in order; the first matching rule decides.
type Matcher struct {
	rules       []Rule
	hasIncludes bool
}

// NewMatcher returns a matcher over rules.
func NewMatcher(rules ...Rule) *Matcher {
	m := &Matcher{}
	m.Add(rules...)
	return m
}

// Add appends rules.
func (m *Matcher) Add(rules ...Rule) {
	for _, r := range rules {
		m.rules = append(m.rules, r)
		if r.Action == Include {
			m.hasIncludes = true
		}
	}
}

// HasIncludes reports whether some rule includes paths, so excluded
// directories must still be searched for included entries.
func (m *Matcher) HasIncludes() bool { return m != nil && m.hasIncludes }

// Match returns the action of the first rule matching p, or None.
func (m *Matcher) Match(p string) Action {
	if m == nil {
		return None
	}
	p = strings.TrimLeft(p, "/")
	for _, r := range m.rules {
		if r.match(p) {
			return r.Action
		}
	}
	return None
}

// ParseExcludes compiles --exclude values (default style sh).
func ParseExcludes(patterns []string) ([]Rule, error) {
	var out []Rule
	for i, p := range patterns {
		r, err := Parse(p, "sh", Exclude)
		if err != nil {
			return nil, fmt.Errorf("exclude %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseFile reads a borg patterns file. Each line is "+ PATTERN",
// "- PATTERN", "! PATTERN", "P STYLE", "R ROOT" (ignored: roots come from
// the command line) or a bare pattern (an exclude); "#" starts a comment
// line. name is used in errors.
func ParseFile(r io.Reader, name string) ([]Rule, error) {
	var out []Rule
	style := "sh"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		var a Action
		switch {
		case len(s) > 2 && s[1] == ' ' && strings.ContainsRune("+-!PR", rune(s[0])):
			cmd, arg := s[0], strings.TrimSpace(s[2:])
			switch cmd {
			case 'P':
				switch arg {
				case "sh", "fm", "re", "pp", "pf":
					style = arg
				default:
					return nil, fmt.Errorf("%s:%d: unknown pattern style %q", name, line, arg)
				}
				continue
			case 'R':
				continue
			case '+':
				a = Include
			case '-':
				a = Exclude
			case '!':
				a = ExcludeNoRecurse
			}
			s = arg
		default:
			a = Exclude
		}
		rule, err := Parse(s, style, a)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}
