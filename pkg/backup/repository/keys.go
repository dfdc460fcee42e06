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

// Bounds on what opening a repository may cost. Whoever holds the storage
// can add key files: reading one is cheap, deriving its wrapping key is
// not, so the two are bounded apart. Key files that cannot be read or
// decoded, or ask for KDF parameters out of range, are skipped before any
// derivation and spend nothing of the derivation budget.
const (
	// MaxKeyFiles is how many key files Open reads (the first by name),
	// each at most backend.KeyLimit; only their KDF parameters and
	// sealed keys are kept.
	MaxKeyFiles = 1024
	// MaxKeyDerivations is how many key derivations Open runs.
	MaxKeyDerivations = 32
	// MaxKeyDerivationWork bounds the summed argon2id work (memory in
	// KiB times passes, crypto.KDFParams.Work) of those derivations: four
	// of the dearest key files crypto.MaxKDFWork allows, or 32 of the
	// keys hostd writes.
	MaxKeyDerivationWork = 4 * crypto.MaxKDFWork
	// maxKeyProblems is how many skipped key files an error names.
	maxKeyProblems = 8
)

// findKey tries the key files with password: the one named by hint
// first (a name or a prefix of one: the key that opened the repository
// last time), then the others, cheapest to derive first, so a planted key
// file never delays a genuine one that costs less. At most MaxKeyFiles
// are read and at most MaxKeyDerivations derived, MaxKeyDerivationWork
// in all; a key file that cannot be read or decoded, or asks for KDF
// parameters out of range, is skipped (and reported if no key opens)
// before any derivation.
//
// ready is called once the key files are read, before the first
// derivation: its error (the config could not be read) ends the search.
func findKey(ctx context.Context, be backend.Backend, password []byte, hint string, ready func() error, opensConfig func(*crypto.Key) bool) (*crypto.Key, string, error) {
	// The first MaxKeyFiles names, kept sorted while listing, so that
	// millions of planted names cost no memory; and the names the hint
	// matches, wherever they sort.
	var names, hinted []string
	total := 0
	if err := be.List(ctx, backend.Key, func(name string, _ int64) error {
		total++
		if hint != "" && strings.HasPrefix(name, hint) && len(hinted) < 2 {
			hinted = append(hinted, name)
		}
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
	if total == 0 {
		return nil, "", fmt.Errorf("no key files: %w", ErrNotRepository)
	}
	kerr := &KeyError{Total: total, Tried: len(names)}
	if hint != "" && len(hinted) != 1 {
		// No key file, or more than one, has that name: the hint is
		// ignored.
		kerr.Hint = hint
		hinted = nil
	}
	type candidate struct {
		name string
		kdf  crypto.KDFParams
		data []byte
	}
	read := func(n string) (candidate, bool) {
		b, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Key, Name: n}, backend.KeyLimit)
		if err != nil {
			kerr.damaged(n, fmt.Errorf("unreadable: %w", err))
			return candidate{}, false
		}
		kf, err := DecodeKeyFile(b)
		if err != nil {
			kerr.damaged(n, err)
			return candidate{}, false
		}
		return candidate{n, kf.KDF, kf.Data}, true
	}
	var cands []candidate
	for _, n := range hinted {
		if c, ok := read(n); ok {
			cands = append(cands, c)
		}
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
	}
	nHinted := len(cands)
	for _, n := range names {
		if slices.Contains(hinted, n) {
			continue
		}
		c, ok := read(n)
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		if ok {
			cands = append(cands, c)
		}
	}
	if err := ready(); err != nil {
		return nil, "", err
	}
	rest := cands[nHinted:]
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].kdf.Work() < rest[j].kdf.Work() })
	unwrapped := false
	var work uint64
	for i, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		if kerr.Derived == MaxKeyDerivations || work+c.kdf.Work() > MaxKeyDerivationWork {
			// Cheapest first: the rest cost as much or more.
			kerr.OverBudget = len(cands) - i
			break
		}
		kerr.Derived++
		work += c.kdf.Work()
		w, err := crypto.DeriveWrappingKey(password, c.kdf)
		if err != nil { // Validate passed in DecodeKeyFile
			kerr.damaged(c.name, err)
			continue
		}
		k, err := w.Unwrap(c.data)
		switch {
		case errors.Is(err, crypto.ErrUnauthenticated):
			kerr.unauthenticated(c.name)
		case err != nil:
			// Authenticated, so written with this password, yet not a
			// master key.
			kerr.damaged(c.name, fmt.Errorf("%w: master key: %w", ErrKeyFileDamaged, err))
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
	Tried           int              // key files read (at most MaxKeyFiles)
	Derived         int              // key derivations run (at most MaxKeyDerivations)
	OverBudget      int              // readable key files not derived: the budget was spent
	Hint            string           // a key hint that named no key file, or more than one
	Unauthenticated []string         // key files the password did not open
	Damaged         []KeyFileProblem // key files skipped before trying the password
}

func (e *KeyError) damaged(name string, err error) {
	e.Damaged = append(e.Damaged, KeyFileProblem{Name: name, Err: err})
}

func (e *KeyError) unauthenticated(name string) {
	e.Unauthenticated = append(e.Unauthenticated, name)
}

func (e *KeyError) Error() string {
	var parts []string
	names := e.Unauthenticated
	more := ""
	if len(names) > maxKeyProblems {
		names, more = names[:maxKeyProblems], fmt.Sprintf(" and %d more", len(names)-maxKeyProblems)
	}
	switch len(e.Unauthenticated) {
	case 0:
		parts = append(parts, "no usable key file")
	case 1:
		parts = append(parts, fmt.Sprintf("wrong password, or key file %s was modified", names[0]))
	default:
		parts = append(parts, fmt.Sprintf("wrong password, or key files %s%s were modified", strings.Join(names, ", "), more))
	}
	for i, p := range e.Damaged {
		if i == maxKeyProblems {
			parts = append(parts, fmt.Sprintf("%d more key files damaged or out of range", len(e.Damaged)-i))
			break
		}
		if errors.Is(p.Err, crypto.ErrKDFOutOfRange) || errors.Is(p.Err, ErrKeyFileDamaged) {
			parts = append(parts, fmt.Sprintf("key file %s: %v", p.Name, p.Err))
		} else {
			parts = append(parts, fmt.Sprintf("key file %s: damaged: %v", p.Name, p.Err))
		}
	}
	if e.OverBudget > 0 {
		parts = append(parts, fmt.Sprintf("%d key files not tried (at most %d key derivations, %d MiB-passes in all, are run; give the key's name as a key hint)",
			e.OverBudget, MaxKeyDerivations, MaxKeyDerivationWork>>10))
	}
	if e.Total > e.Tried {
		parts = append(parts, fmt.Sprintf("%d more key files not tried (at most %d are)", e.Total-e.Tried, MaxKeyFiles))
	}
	if e.Hint != "" {
		parts = append(parts, fmt.Sprintf("key hint %q names no single key file", e.Hint))
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
