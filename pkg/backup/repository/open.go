package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Create initialises an empty repository in be with a new master key
// wrapped by password.
func Create(ctx context.Context, be backend.Backend, password []byte, cfg Config, kdf crypto.KDFParams, o Options) (*Repository, error) {
	o.defaults()
	if len(password) == 0 {
		return nil, errors.New("init repository: empty password")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.Config}); err == nil {
		return nil, fmt.Errorf("init repository %s: already initialised", be.Location())
	}
	key, err := crypto.NewRandomKeyFor(cfg.Cipher())
	if err != nil {
		return nil, err
	}
	if err := be.Create(ctx); err != nil {
		return nil, err
	}
	// Key files without a config are what an interrupted init left:
	// their master key is not this repository's.
	var stale []string
	if err := be.List(ctx, backend.Key, func(name string, _ int64) error {
		stale = append(stale, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	for _, name := range stale {
		if err := be.Remove(ctx, backend.Handle{Type: backend.Key, Name: name}); err != nil {
			return nil, fmt.Errorf("init repository: remove key of an interrupted init: %w", err)
		}
	}
	r, err := newRepository(be, key, cfg, o)
	if err != nil {
		return nil, err
	}
	name, err := r.AddKey(ctx, password, kdf)
	if err != nil {
		return nil, err
	}
	r.keyName = name
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The config is written last: a repository without one is not a
	// repository, so a crashed init can simply be repeated.
	if err := be.Save(ctx, backend.Handle{Type: backend.Config}, r.encryptFile(b)); err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	return r, nil
}

// Open unlocks the repository in be with password and loads its index.
// Whatever does not need the key is read while the key is derived: the
// config, the key files, the index files (checked and decrypted once the
// key is known), the lock files and, with Options.PrefetchSnapshots, the
// snapshots. Nothing read is used before the key authenticates it.
func Open(ctx context.Context, be backend.Backend, password []byte, o Options) (*Repository, error) {
	o.defaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idx := fetchFiles(ctx, be, backend.Index, nil)
	locks := fetchEarly(ctx, be, backend.Lock)
	var snaps *earlyFetch
	if o.PrefetchSnapshots {
		snaps = fetchEarly(ctx, be, backend.Snapshot)
	}
	var raw []byte
	var rawErr error
	cfgDone := make(chan struct{})
	go func() {
		defer close(cfgDone)
		raw, rawErr = loadConfigFile(ctx, be)
	}()
	stop := func() {
		cancel()
		idx.drain()
		locks.wait()
		snaps.wait()
		<-cfgDone
	}
	// The key must also open the config: a key file left by an init that
	// crashed before writing its config wraps another master key.
	var plain []byte
	key, keyName, err := findKey(ctx, be, password, o.KeyHint, func() error {
		<-cfgDone
		return rawErr
	}, func(k *crypto.Key) bool {
		var derr error
		plain, derr = decryptFile(k, nil, raw)
		return derr == nil
	})
	if err != nil {
		// The config's answer comes first: it says whether there is a
		// repository at all (a location without one has no key files
		// either, and the key search may fail before the config is in).
		// Cancelling its read first would report that cancellation.
		<-cfgDone
		stop()
		if rawErr != nil {
			return nil, rawErr // not a repository, or its config unreadable
		}
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	cfg, err := DecodeConfig(plain)
	if err == nil && key.Cipher != cfg.Cipher() {
		err = fmt.Errorf("key cipher %s does not match repository version %d", key.Cipher, cfg.Version)
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	r, err := newRepository(be, key, cfg, o)
	if err != nil {
		stop()
		return nil, err
	}
	r.keyName = keyName
	if err := r.addIndexFiles(ctx, idx); err != nil {
		stop()
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	locks.wait()
	snaps.wait()
	r.keepEarly(locks, snaps)
	return r, nil
}

// loadConfigFile reads be's encrypted config file, for Open and
// OpenWithKey.
func loadConfigFile(ctx context.Context, be backend.Backend) ([]byte, error) {
	raw, err := backend.LoadFile(ctx, be, backend.Handle{Type: backend.Config}, backend.ConfigLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return raw, nil
}

// openConfigured builds the repository of be once key (from the key file
// keyName) has opened its config cfg, and loads its index.
func openConfigured(ctx context.Context, be backend.Backend, key *crypto.Key, keyName string, cfg Config, o Options) (*Repository, error) {
	r, err := newRepository(be, key, cfg, o)
	if err != nil {
		return nil, err
	}
	r.keyName = keyName
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return r, nil
}
