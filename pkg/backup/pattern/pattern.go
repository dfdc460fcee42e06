package pattern

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
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
// defaultStyle applies when there is none. As in borg's parse_pattern, s
// has a prefix when it is longer than two characters, its third character
// is ':' and its first two are letters or digits; an unknown prefix (such
// as "zz:" or "SH:") is an error, not part of a default-style pattern.
// Anything else, such as "C:\x" or ".a:b", is a default-style pattern.
func Parse(s, defaultStyle string, a Action) (Rule, error) {
	style, pat := defaultStyle, s
	if st, p, ok := splitStyle(s); ok {
		if !knownStyle(st) {
			return Rule{Action: a, Style: st, Source: s},
				fmt.Errorf("pattern %q: unknown pattern style: %s (want sh, fm, re, pp or pf)", s, st)
		}
		style, pat = st, p
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

// splitStyle applies borg's parse_pattern test for a "style:" prefix,
// counting characters (runes) the way Python does: more than two
// characters, the third ':' and the first two alphanumeric (a Unicode
// letter or number, like Python's str.isalnum).
func splitStyle(s string) (style, pat string, ok bool) {
	var rs [3]rune
	i := 0
	for n := range rs {
		if i >= len(s) {
			return "", "", false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		rs[n] = r
		i += size
	}
	if rs[2] != ':' || !isAlnum(rs[0]) || !isAlnum(rs[1]) {
		return "", "", false
	}
	return s[:i-1], s[i:], true
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// knownStyle reports whether style is one of borg's pattern styles.
func knownStyle(style string) bool {
	switch style {
	case "sh", "fm", "re", "pp", "pf":
		return true
	}
	return false
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

// File is what LoadFile found in a borg patterns file.
type File struct {
	// Rules are the +, - and ! lines compiled in file order, for a
	// Matcher.
	Rules []Rule
	// Roots are the paths of the R lines in file order, as written (the
	// text after "R" and the blanks following it; not cleaned or made
	// absolute). As with borg's --patterns-from they are further paths
	// to back up, which the caller adds to those from the command line.
	// Nil when the file has no R lines.
	Roots []string
}

// LoadFile reads a borg patterns file (borg's --patterns-from). Each
// line, stripped of surrounding blanks, is empty, a "#" comment, or a
// command: its first character is the command and the rest, with
// leading blanks removed, is its value, so "-tmp" and "- tmp" are the
// same. The commands are "+ PATTERN" (include), "- PATTERN" (exclude),
// "! PATTERN" (exclude without descending), "P STYLE" (default style for
// the following patterns, initially sh) and "R PATH" (a root path to back
// up, see File.Roots); "p" and "r" are accepted for "P" and "R", as borg
// does. As in borg, any other first character, a command without a
// value, an unknown style and a pattern Parse rejects are errors naming
// name and the line number.
func LoadFile(r io.Reader, name string) (*File, error) {
	f := &File{}
	style := "sh"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		// Every command character is ASCII, so s[0] is the whole
		// first character whenever it is a command.
		cmd, arg := s[0], strings.TrimLeftFunc(s[1:], unicode.IsSpace)
		var a Action
		switch cmd {
		case '+':
			a = Include
		case '-':
			a = Exclude
		case '!':
			a = ExcludeNoRecurse
		case 'P', 'p', 'R', 'r':
		default:
			c, _ := utf8.DecodeRuneInString(s)
			return nil, fmt.Errorf("%s:%d: %q: unknown command %q (a line must start with +, -, !, P or R)", name, line, s, c)
		}
		if arg == "" {
			return nil, fmt.Errorf("%s:%d: %q: command %q has no value", name, line, s, cmd)
		}
		switch cmd {
		case 'P', 'p':
			if !knownStyle(arg) {
				return nil, fmt.Errorf("%s:%d: %q: unknown pattern style %q (want sh, fm, re, pp or pf)", name, line, s, arg)
			}
			style = arg
			continue
		case 'R', 'r':
			f.Roots = append(f.Roots, arg)
			continue
		}
		rule, err := Parse(arg, style, a)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		f.Rules = append(f.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return f, nil
}
