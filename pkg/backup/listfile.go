package backup

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/hostd/hostd/internal/safefile"
)

// listFileLimit bounds a --files-from or --exclude-file list: about a
// million paths of 256 bytes.
const listFileLimit = 256 << 20

// readListFile reads a list of paths or patterns from name ("-": stdin):
// with raw, NUL-separated entries as they are; else lines, without
// empty lines, lines starting with # and trailing CRs.
func readListFile(name string, stdin io.Reader, raw bool) ([]string, error) {
	var b []byte
	var err error
	if name == "-" {
		if stdin == nil {
			return nil, fmt.Errorf("%s: no stdin", name)
		}
		b, err = safefile.ReadAll(stdin, "stdin", listFileLimit)
	} else {
		b, err = safefile.Read(name, listFileLimit)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	if raw {
		for _, e := range bytes.Split(b, []byte{0}) {
			if len(e) > 0 {
				out = append(out, string(e))
			}
		}
		return out, nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// expandGlobs replaces entries holding shell glob characters by the
// paths they match; one that matches nothing stays as it is (and is
// reported missing by the backup).
func expandGlobs(in []string) []string {
	var out []string
	for _, p := range in {
		if !strings.ContainsAny(p, "*?[") {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil || len(m) == 0 {
			out = append(out, p)
			continue
		}
		out = append(out, m...)
	}
	return out
}
