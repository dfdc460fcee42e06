package confkit

import (
	"fmt"
	"net"
	"strconv"
)

// FieldError is a semantic problem at a key path, before it has a position.
type FieldError struct {
	Path string
	Msg  string
}

// Validator collects semantic problems by key path. Services receive one
// scoped to their section and report every problem they find.
type Validator struct {
	prefix string
	errs   *[]FieldError
}

// NewValidator returns a Validator whose paths start with prefix.
func NewValidator(prefix string) *Validator {
	return &Validator{prefix: prefix, errs: new([]FieldError)}
}

// At returns a Validator for a sub-path, sharing this one's error list.
func (v *Validator) At(sub string) *Validator {
	return &Validator{prefix: JoinPath(v.prefix, sub), errs: v.errs}
}

// Errorf records a problem at path, relative to the validator's prefix.
func (v *Validator) Errorf(path, format string, args ...any) {
	*v.errs = append(*v.errs, FieldError{Path: JoinPath(v.prefix, path), Msg: fmt.Sprintf(format, args...)})
}

// Errors returns everything recorded so far.
func (v *Validator) Errors() []FieldError { return *v.errs }

// CheckListen reports a problem unless addr is a host:port with a valid
// port. An empty addr is accepted (the listener is off).
func (v *Validator) CheckListen(path, addr string) {
	if addr == "" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.Errorf(path, "invalid listen address %q: want host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.Errorf(path, "invalid port %q in %q", port, addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		v.Errorf(path, "listen host %q is not an IP address", host)
	}
}

// JoinPath joins key paths: JoinPath("a", "b") is "a.b"; index suffixes
// ("[0]") are appended without a dot. A key b holding a character that
// is not printable (a newline, a bidi control, invalid UTF-8: see
// DisplayPath) is quoted with Go's escapes, so paths built from the
// file's keys are safe to print: JoinPath("jobs", "a\nb") is
// `jobs."a\nb"`.
func JoinPath(a, b string) string {
	if !plainKey(b) {
		b = strconv.Quote(b)
	}
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case b[0] == '[':
		return a + b
	}
	return a + "." + b
}
