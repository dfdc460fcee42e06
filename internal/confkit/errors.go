package confkit

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pos is a position in a config file, 1-based. The zero Pos means the value
// did not come from the file (a default).
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Error is one problem with a config file.
type Error struct {
	File string `json:"file"`
	Pos  Pos    `json:"pos"`
	// Path is the dotted key path, for example "backup.jobs.home.paths[0]".
	Path string `json:"path,omitempty"`
	Msg  string `json:"msg"`
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(DisplayPath(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config file, in file order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// DisplayPath is a key path as a message shows it. Keys come from the
// file: one holding a character that is not printable (a newline, a
// control character, a bidi control such as U+202E, invalid UTF-8) could
// forge an error line or reorder the text around it on a terminal.
// JoinPath already quotes such a key (backup.jobs."a\nb".paths); a path
// built otherwise that still holds one is quoted whole, with Go's
// escapes. Every other path prints as it is.
func DisplayPath(path string) string {
	if plainKey(path) {
		return path
	}
	return strconv.Quote(path)
}

// plainKey reports whether k is valid UTF-8 of printable characters
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space; not format characters such as bidi controls).
func plainKey(k string) bool {
	return utf8.ValidString(k) && !strings.ContainsFunc(k, func(r rune) bool { return !unicode.IsPrint(r) })
}
