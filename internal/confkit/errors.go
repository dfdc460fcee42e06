package confkit

import (
	"fmt"
	"strings"
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
		b.WriteString(e.Path)
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
