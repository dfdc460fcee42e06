package backup

import (
	"context"
	"log/slog"
	"time"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// ErrKeyGone is wrapped by OpenUnlocked's error when the key no longer
// opens the repository (its key file was removed, or the repository was
// created anew): open it with the password.
var ErrKeyGone = repository.ErrKeyGone

// UnlockedKey is a repository's master key, unlocked from one of its key
// files by a password, so that the repository can be opened again without
// deriving the key (argon2id: 32 MiB and a large part of a second with
// hostd's parameters). It lives in memory only; the zero value is no key.
type UnlockedKey struct {
	key  *crypto.Key
	name string
}

// KeyName is the key file the key was unlocked from.
func (k UnlockedKey) KeyName() string { return k.name }

// Valid reports whether k holds a key.
func (k UnlockedKey) Valid() bool { return k.key != nil && k.name != "" }

// UnlockedKey returns the key that opened r.
func (r *Repository) UnlockedKey() UnlockedKey {
	return UnlockedKey{key: r.repo.Key(), name: r.repo.KeyName()}
}

// InitUnlocked is Init, and returns the new repository's key unlocked:
// the repository can be opened with OpenUnlocked without a second key
// derivation.
func InitUnlocked(ctx context.Context, repoURL string, password []byte, opts InitOptions) (UnlockedKey, error) {
	r, err := create(ctx, repoURL, password, opts)
	if err != nil {
		return UnlockedKey{}, err
	}
	k := UnlockedKey{key: r.Key(), name: r.KeyName()}
	if err := r.Close(); err != nil {
		return UnlockedKey{}, err
	}
	return k, nil
}

// OpenUnlocked opens the repository at repoURL with a key already
// unlocked (UnlockedKey, InitUnlocked) as Open does with a password,
// without deriving a key. Its error wraps ErrKeyGone when the key no
// longer opens the repository, ErrNotRepository when there is none.
func OpenUnlocked(ctx context.Context, repoURL string, key UnlockedKey, opts OpenOptions) (*Repository, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	be, err := backend.Open(ctx, repoURL, opts.Backend)
	if err != nil {
		return nil, err
	}
	r, err := repository.OpenWithKey(ctx, be, key.key, key.name, repository.Options{Logger: opts.Logger, Now: opts.Now})
	if err != nil {
		be.Close()
		return nil, err
	}
	return &Repository{repo: r, opts: opts, log: opts.Logger, now: opts.Now}, nil
}
