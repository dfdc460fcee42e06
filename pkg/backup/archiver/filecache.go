package archiver

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// cacheMaxAge is how many backups an entry survives without its file being
// seen (so jobs backing up different paths into one repository share it).
const cacheMaxAge = 20

// FileCache remembers, per absolute path, the stat facts and content blob
// IDs of files saved before, so an unchanged file is not read again. It is
// local state (never in the repository) stored in one file, replaced
// atomically at the end of every run that completes.
type FileCache struct {
	path string
	mu   sync.Mutex
	old  map[string]CacheEntry
	seen map[string]CacheEntry
}

// CacheEntry is what the cache keeps for one file.
type CacheEntry struct {
	Size    uint64
	MTimeNs int64
	CTimeNs int64
	Inode   uint64
	Content []repository.ID
	Age     int
}

// LoadFileCache reads the cache at path. A missing or unreadable cache is
// an empty one (the backup then reads every file).
func LoadFileCache(path string) *FileCache {
	c := &FileCache{path: path, old: map[string]CacheEntry{}, seen: map[string]CacheEntry{}}
	f, err := os.Open(path)
	if err != nil {
		return c
	}
	defer f.Close()
	var m map[string]CacheEntry
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&m); err == nil {
		c.old = m
	}
	return c
}

// Lookup returns the cached content of path if size, mtime, ctime and
// inode all match.
func (c *FileCache) Lookup(path string, n *repository.Node) ([]repository.ID, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.old[path]
	if !ok || e.Size != n.Size || e.MTimeNs != n.MTimeNs || e.CTimeNs != n.CTimeNs || e.Inode != n.Inode {
		return nil, false
	}
	return e.Content, true
}

// Known reports whether path was in the cache (changed vs new files).
func (c *FileCache) Known(path string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.old[path]
	return ok
}

// Store records path's current facts and content.
func (c *FileCache) Store(path string, n *repository.Node, content []repository.ID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.seen[path] = CacheEntry{Size: n.Size, MTimeNs: n.MTimeNs, CTimeNs: n.CTimeNs, Inode: n.Inode, Content: content}
	c.mu.Unlock()
}

// Save writes the entries seen in this run plus unseen ones younger than
// cacheMaxAge, atomically.
func (c *FileCache) Save() error {
	if c == nil || c.path == "" {
		return nil
	}
	c.mu.Lock()
	out := make(map[string]CacheEntry, len(c.seen)+len(c.old))
	for p, e := range c.old {
		if _, ok := c.seen[p]; !ok && e.Age+1 < cacheMaxAge {
			e.Age++
			out[p] = e
		}
	}
	for p, e := range c.seen {
		out[p] = e
	}
	c.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save file cache: %w", err)
	}
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save file cache: %w", err)
	}
	// No fsync: a cache cut short by a power loss fails to decode and
	// counts as empty, which costs one full read of the files.
	w := bufio.NewWriterSize(f, 1<<20)
	err = gob.NewEncoder(w).Encode(out)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save file cache: %w", err)
	}
	return nil
}

// Remove deletes the cache file.
func (c *FileCache) Remove() error {
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
