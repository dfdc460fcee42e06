package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// MaxKeyFiles is how many key files Open tries: whoever holds the storage
// can add key files, and each costs a key derivation.
const MaxKeyFiles = 32

// findKey tries the key files with password: at most MaxKeyFiles of them
// (the first by name), the cheapest to derive first, so a planted key
// file never delays a genuine one that costs less. A key file that
// cannot be read or decoded, or asks for KDF parameters out of range, is
// skipped (and reported if no key opens) before any derivation.
func findKey(ctx context.Context, be backend.Backend, password []byte, opensConfig func(*crypto.Key) bool) (*crypto.Key, string, error) {
	// The first MaxKeyFiles names, kept sorted while listing, so that
	// millions of planted names cost no memory.
	var names []string
	total := 0
	if err := be.List(ctx, backend.Key, func(name string, _ int64) error {
		total++
		i := sort.SearchStrings(names, name)
		if i >= MaxKeyFiles {
			return nil
		}
		names = slices.Insert(names, i, name)
		if len(names) > MaxKeyFiles {
			names = names[:MaxKeyFiles]
		}
		return nil
	}); err != nil {
		return nil, "", fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("no key files: %w", ErrNotRepository)
	}
	kerr := &KeyError{Total: total, Tried: len(names)}
	type candidate struct {
		name string
		kf   *KeyFile
	}
	var cands []candidate
	for _, n := range names {
		b, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Key, Name: n}, backend.KeyLimit)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: n, Err: fmt.Errorf("unreadable: %w", err)})
			continue
		}
		kf, err := DecodeKeyFile(b)
		if err != nil {
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: n, Err: err})
			continue
		}
		cands = append(cands, candidate{n, kf})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].kf.KDF.Work() < cands[j].kf.KDF.Work() })
	unwrapped := false
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		w, err := crypto.DeriveWrappingKey(password, c.kf.KDF)
		if err != nil { // Validate passed in DecodeKeyFile
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: c.name, Err: err})
			continue
		}
		k, err := w.Unwrap(c.kf.Data)
		switch {
		case errors.Is(err, crypto.ErrUnauthenticated):
			kerr.Unauthenticated = append(kerr.Unauthenticated, c.name)
		case err != nil:
			// Authenticated, so written with this password, yet not a
			// master key.
			kerr.Damaged = append(kerr.Damaged, KeyFileProblem{Name: c.name, Err: fmt.Errorf("%w: master key: %w", ErrKeyFileDamaged, err)})
		case opensConfig(k):
			return k, c.name, nil
		default:
			unwrapped = true
		}
	}
	if unwrapped {
		return nil, "", errors.New("the passphrase opens a key, but the config file does not decrypt with it (damaged config?)")
	}
	return nil, "", kerr
}

// ErrKeyFileDamaged is wrapped by the error of a key file whose structure
// is invalid: not the JSON of a key file, values of the wrong length, or
// cut short.
var ErrKeyFileDamaged = errors.New("damaged")

// KeyFileProblem is a key file that could not be tried, and why.
type KeyFileProblem struct {
	Name string
	Err  error
}

// KeyError is Open's error when no key file opened the repository. It
// matches ErrWrongPassword when at least one key file was tried with the
// password and failed authentication (a wrong password, or a key file
// modified in a way only the password could tell), ErrKeyFileDamaged and
// crypto.ErrKDFOutOfRange when a key file was skipped for that reason.
type KeyError struct {
	Total           int              // key files in the repository
	Tried           int              // key files considered (at most MaxKeyFiles)
	Unauthenticated []string         // key files the password did not open
	Damaged         []KeyFileProblem // key files skipped before trying the password
}

func (e *KeyError) Error() string {
	var parts []string
	switch len(e.Unauthenticated) {
	case 0:
		parts = append(parts, "no usable key file")
	case 1:
		parts = append(parts, fmt.Sprintf("wrong password, or key file %s was modified", e.Unauthenticated[0]))
	default:
		parts = append(parts, fmt.Sprintf("wrong password, or key files %s were modified", strings.Join(e.Unauthenticated, ", ")))
	}
	for _, p := range e.Damaged {
		if errors.Is(p.Err, crypto.ErrKDFOutOfRange) || errors.Is(p.Err, ErrKeyFileDamaged) {
			parts = append(parts, fmt.Sprintf("key file %s: %v", p.Name, p.Err))
		} else {
			parts = append(parts, fmt.Sprintf("key file %s: damaged: %v", p.Name, p.Err))
		}
	}
	if e.Total > e.Tried {
		parts = append(parts, fmt.Sprintf("%d more key files not tried (at most %d are)", e.Total-e.Tried, MaxKeyFiles))
	}
	return strings.Join(parts, "; ")
}

// Is reports ErrWrongPassword when the password was tried and failed.
func (e *KeyError) Is(target error) bool {
	return target == ErrWrongPassword && len(e.Unauthenticated) > 0
}

// Unwrap returns the errors of the skipped key files.
func (e *KeyError) Unwrap() []error {
	out := make([]error, len(e.Damaged))
	for i, p := range e.Damaged {
		out[i] = p.Err
	}
	return out
}

// AddKey stores a new key file wrapping the master key with password and
// returns its name.
func (r *Repository) AddKey(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if len(password) == 0 {
		return "", errors.New("add key: empty password")
	}
	w, err := crypto.DeriveWrappingKey(password, kdf)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	sealed, err := w.Wrap(r.key)
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	host, _ := os.Hostname()
	kf := KeyFile{Created: r.now().UTC(), Hostname: host, Username: currentUser(), KDF: kdf, Data: sealed}
	b, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	name := fileID(b).String()
	if err := r.be.Save(ctx, backend.Handle{Type: backend.Key, Name: name}, b); err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	return name, nil
}

// RemoveKey deletes the key file name; the key in use cannot be removed.
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	if name == r.keyName {
		return errors.New("remove key: refusing to remove the key in use")
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.Key, Name: name})
}

// KeyName returns the name of the key file that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }

// Keys lists key files.
func (r *Repository) Keys(ctx context.Context) ([]string, error) {
	var names []string
	err := r.be.List(ctx, backend.Key, func(n string, _ int64) error { names = append(names, n); return nil })
	sort.Strings(names)
	return names, err
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
