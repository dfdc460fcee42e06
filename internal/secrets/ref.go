package secrets

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Ref is a reference to a secret value. Its forms are:
//
//	sops:PATH#key/path   a key in a SOPS-encrypted YAML or JSON file
//	file:PATH            the contents of a file (trailing newline removed)
//	/abs/path            the same as file:/abs/path
//	cred:NAME            $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)
//	env:NAME             the environment variable NAME
//
// The zero Ref means "not set".
type Ref string

// Scheme names of references.
const (
	SchemeSOPS = "sops"
	SchemeFile = "file"
	SchemeCred = "cred"
	SchemeEnv  = "env"
)

// ParseRef checks the syntax of a reference.
func ParseRef(s string) (Ref, error) {
	r := Ref(s)
	if _, _, _, err := r.parts(); err != nil {
		return "", err
	}
	return r, nil
}

// parts splits a reference into scheme, location and (for sops) key path.
func (r Ref) parts() (scheme, loc, key string, err error) {
	s := string(r)
	if s == "" {
		return "", "", "", fmt.Errorf("empty secret reference")
	}
	if strings.HasPrefix(s, "/") {
		return SchemeFile, filepath.Clean(s), "", nil
	}
	scheme, loc, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", "", fmt.Errorf("secret reference must be sops:FILE#key, file:PATH, cred:NAME, env:NAME or an absolute path (literal secrets are not allowed in the config)")
	}
	switch scheme {
	case SchemeSOPS:
		file, key, ok := strings.Cut(loc, "#")
		if !ok || file == "" || key == "" {
			return "", "", "", fmt.Errorf("sops reference must be sops:FILE#key/path")
		}
		return scheme, file, key, nil
	case SchemeFile:
		if loc == "" {
			return "", "", "", fmt.Errorf("file reference needs a path")
		}
		return scheme, loc, "", nil
	case SchemeCred:
		if loc == "" || strings.ContainsRune(loc, '/') {
			return "", "", "", fmt.Errorf("credential name %q must be a plain name", loc)
		}
		return scheme, loc, "", nil
	case SchemeEnv:
		if loc == "" {
			return "", "", "", fmt.Errorf("env reference needs a variable name")
		}
		return scheme, loc, "", nil
	}
	return "", "", "", fmt.Errorf("unknown secret scheme %q (want sops, file, cred or env)", scheme)
}

// String returns the reference itself, never the secret.
func (r Ref) String() string { return string(r) }

// IsZero reports whether the reference is unset.
func (r Ref) IsZero() bool { return r == "" }

// UnmarshalConfig implements confkit.Unmarshaler: references are checked
// for syntax while the config is decoded.
func (r *Ref) UnmarshalConfig(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a secret reference string")
	}
	if n.Tag == "!!null" || n.Value == "" {
		*r = ""
		return nil
	}
	ref, err := ParseRef(n.Value)
	if err != nil {
		return err
	}
	*r = ref
	return nil
}
