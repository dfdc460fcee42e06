package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hostd/hostd/internal/safefile"
)

// ErrNotFound is wrapped by errors for secrets that do not exist.
var ErrNotFound = errors.New("secret not found")

// ErrEmpty is wrapped by errors for secrets whose value is empty (or only
// a line break): a secret is never optional once it is referenced, and an
// empty password would let anyone in.
var ErrEmpty = errors.New("secret is empty")

// ErrTooLarge is wrapped by errors for secret values larger than
// ValueLimit, and for SOPS files larger than SOPSFileLimit.
var ErrTooLarge = safefile.ErrTooLarge

// Size caps. A secret value (a file, a credential, an environment
// variable, a value in a SOPS file) is at most ValueLimit bytes; a SOPS
// file holds many values and may be up to SOPSFileLimit; an age key file
// up to safefile.KeyFileLimit.
const (
	ValueLimit    = safefile.SecretLimit
	SOPSFileLimit = safefile.ConfigLimit
)

// Resolver looks up secret values. The zero value is not usable; use
// NewResolver.
type Resolver struct {
	// AgeKeyFile holds the age identities for SOPS files. Empty means
	// $SOPS_AGE_KEY_FILE.
	AgeKeyFile string
	// BaseDir resolves relative file and sops paths (the config file's
	// directory).
	BaseDir string
	// Getenv reads the environment; tests replace it.
	Getenv func(string) string
}

// NewResolver returns a Resolver reading the process environment.
func NewResolver(baseDir, ageKeyFile string) *Resolver {
	return &Resolver{BaseDir: baseDir, AgeKeyFile: ageKeyFile, Getenv: os.Getenv}
}

func (r *Resolver) path(p string) string {
	if filepath.IsAbs(p) || r.BaseDir == "" {
		return p
	}
	return filepath.Join(r.BaseDir, p)
}

// Resolve returns the secret value a reference points to. Errors name the
// reference, never the value.
func (r *Resolver) Resolve(ctx context.Context, ref Ref) ([]byte, error) {
	scheme, loc, key, err := ref.parts()
	if err != nil {
		return nil, fmt.Errorf("resolve secret %s: %w", ref, err)
	}
	var v []byte
	switch scheme {
	case SchemeFile:
		v, err = readSecretFile(r.path(loc))
	case SchemeCred:
		dir := r.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			err = fmt.Errorf("$CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?): %w", ErrNotFound)
			break
		}
		v, err = readSecretFile(filepath.Join(dir, loc))
	case SchemeEnv:
		s := r.Getenv(loc)
		switch {
		case s == "":
			err = fmt.Errorf("environment variable %s is empty or unset: %w", loc, ErrNotFound)
		case len(s) > ValueLimit:
			err = fmt.Errorf("environment variable %s: %w: larger than %d KiB", loc, ErrTooLarge, ValueLimit>>10)
		}
		v = []byte(s)
	case SchemeSOPS:
		v, err = r.resolveSOPS(ctx, r.path(loc), key)
		if err == nil && len(v) > ValueLimit {
			err = fmt.Errorf("sops file %s: key %s: %w: larger than %d KiB", r.path(loc), key, ErrTooLarge, ValueLimit>>10)
		}
	}
	if err == nil && len(bytes.TrimRight(v, "\r\n")) == 0 {
		err = ErrEmpty
	}
	if err != nil {
		return nil, fmt.Errorf("resolve secret %s: %w", ref, err)
	}
	return v, nil
}

// Check resolves a reference and discards the value, for config
// validation.
func (r *Resolver) Check(ctx context.Context, ref Ref) error {
	_, err := r.Resolve(ctx, ref)
	return err
}

// readSecretFile reads a secret file through safefile: a regular file of
// at most ValueLimit bytes. A FIFO or device is refused at once, without
// waiting for a writer or reading without end.
func readSecretFile(p string) ([]byte, error) {
	b, err := safefile.Read(p, ValueLimit)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no file %s: %w", p, ErrNotFound)
	}
	if err != nil {
		return nil, err // names p
	}
	return bytes.TrimRight(b, "\r\n"), nil
}
