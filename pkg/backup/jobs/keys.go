package jobs

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"github.com/hostd/hostd/pkg/backup"
)

// keyCache keeps the repository keys the jobs unlocked, so that a run
// opens its repository without deriving the key from the password again
// (argon2id: 32 MiB of heap and most of a second with hostd's
// parameters, once per run otherwise). An entry is found by the
// repository's location, the key file that opened it last (the job's
// remembered key) and a keyed hash of the password, which is still read
// from its secret reference at every run: a changed password, key file
// or location misses and derives again. The keys live in memory only,
// and are dropped when the service stops (a reload that changes the
// backup section builds a new service) and when one no longer opens its
// repository.
type keyCache struct {
	mu   sync.Mutex
	salt []byte // HMAC key of the password hashes, random per service
	keys map[string]backup.UnlockedKey
}

func newKeyCache() *keyCache {
	salt := make([]byte, 32)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	return &keyCache{salt: salt, keys: map[string]backup.UnlockedKey{}}
}

// id is the entry of repository location loc, key file name and
// password.
func (c *keyCache) id(loc, name string, password []byte) string {
	m := hmac.New(sha256.New, c.salt)
	m.Write(password)
	return repositoryKey(loc) + "\x00" + name + "\x00" + string(m.Sum(nil))
}

func (c *keyCache) get(loc, name string, password []byte) (backup.UnlockedKey, bool) {
	if name == "" {
		return backup.UnlockedKey{}, false
	}
	id := c.id(loc, name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[id]
	return k, ok
}

func (c *keyCache) put(loc string, password []byte, k backup.UnlockedKey) {
	if !k.Valid() {
		return
	}
	id := c.id(loc, k.KeyName(), password)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[id] = k
}

func (c *keyCache) drop(loc, name string, password []byte) {
	id := c.id(loc, name, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.keys, id)
}

// clear forgets every key.
func (c *keyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.keys)
}
