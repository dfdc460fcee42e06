package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// ErrKeyGone is wrapped by OpenWithKey's error when the key it was given
// no longer opens the repository: its key file was removed, or the
// repository was created anew at that location. Open with the password.
var ErrKeyGone = errors.New("the unlocked key no longer opens this repository")

// OpenWithKey opens the repository in be with a master key that Open or
// Create already unlocked (Key) from the key file keyName (KeyName),
// and loads its index: no key derivation, which costs the most memory and
// time of an Open (argon2id). The key file must still exist, so removing
// a key (key remove, key passwd) also ends the use of the keys unlocked
// through it, and the key must decrypt the config; else the error wraps
// ErrKeyGone.
func OpenWithKey(ctx context.Context, be backend.Backend, key *crypto.Key, keyName string, o Options) (*Repository, error) {
	o.defaults()
	if key == nil || keyName == "" {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), ErrKeyGone)
	}
	raw, err := loadConfigFile(ctx, be)
	if err != nil {
		return nil, err
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Key, Name: keyName}); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: key file %s: %w", be.Location(), keyName, ErrKeyGone)
	} else if err != nil {
		return nil, fmt.Errorf("open repository %s: key file %s: %w", be.Location(), keyName, err)
	}
	plain, err := decryptFile(key, nil, raw)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: config: %w", be.Location(), ErrKeyGone)
	}
	cfg, err := DecodeConfig(plain)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	if key.Cipher != cfg.Cipher() {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), ErrKeyGone)
	}
	return openConfigured(ctx, be, key, keyName, cfg, o)
}
