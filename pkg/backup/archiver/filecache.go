package archiver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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

// LoadFileCache reads the cache at path. A missing, unreadable or
// damaged cache is an empty one (the backup then reads every file).
func LoadFileCache(path string) *FileCache {
	c := &FileCache{path: path, old: map[string]CacheEntry{}, seen: map[string]CacheEntry{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	if m, err := decodeFileCache(b); err == nil {
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
	b := encodeFileCache(c.seen, c.old)
	c.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("save file cache: %w", err)
	}
	// No fsync: a cache cut short by a power loss fails its checksum and
	// counts as empty, which costs one full read of the files.
	tmp := c.path + ".tmp"
	err := os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save file cache: %w", err)
	}
	return nil
}

// fileCacheMagic starts a file cache; a cache in any other format (an
// older one included) is ignored.
const fileCacheMagic = "hostd-files-v2\n"

// encodeFileCache returns the cache file for the entries of seen, plus
// those of old not in seen and younger than cacheMaxAge (aged by one):
//
//	magic ‖ count uvarint ‖ entry* ‖ CRC-32C of all before it (4 bytes, LE)
//	entry = len(path) uvarint ‖ path ‖ size uvarint ‖ mtime_ns varint ‖
//	        ctime_ns varint ‖ inode uvarint ‖ age uvarint ‖
//	        len(content) uvarint ‖ content IDs (32 bytes each)
func encodeFileCache(seen, old map[string]CacheEntry) []byte {
	keep := func(p string, e CacheEntry) bool {
		_, ok := seen[p]
		return !ok && e.Age+1 < cacheMaxAge
	}
	count, size := len(seen), len(fileCacheMagic)+binary.MaxVarintLen64+4
	entrySize := func(p string, e CacheEntry) int {
		return len(p) + len(e.Content)*len(repository.ID{}) + 7*binary.MaxVarintLen64
	}
	for p, e := range seen {
		size += entrySize(p, e)
	}
	for p, e := range old {
		if keep(p, e) {
			count++
			size += entrySize(p, e)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, fileCacheMagic...)
	b = binary.AppendUvarint(b, uint64(count))
	put := func(p string, e CacheEntry) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		b = binary.AppendUvarint(b, e.Size)
		b = binary.AppendVarint(b, e.MTimeNs)
		b = binary.AppendVarint(b, e.CTimeNs)
		b = binary.AppendUvarint(b, e.Inode)
		b = binary.AppendUvarint(b, uint64(e.Age))
		b = binary.AppendUvarint(b, uint64(len(e.Content)))
		for _, id := range e.Content {
			b = append(b, id[:]...)
		}
	}
	for p, e := range old {
		if keep(p, e) {
			e.Age++
			put(p, e)
		}
	}
	for p, e := range seen {
		put(p, e)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// errBadFileCache is any damage to a cache file.
var errBadFileCache = errors.New("file cache damaged or in another format")

// decodeFileCache parses a cache file written by encodeFileCache.
func decodeFileCache(b []byte) (map[string]CacheEntry, error) {
	if len(b) < len(fileCacheMagic)+4 || string(b[:len(fileCacheMagic)]) != fileCacheMagic {
		return nil, errBadFileCache
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errBadFileCache
	}
	d := cacheDecoder{b: body[len(fileCacheMagic):]}
	count := d.uvarint()
	// Every entry takes at least 7 bytes: a count past that is damage,
	// caught before it sizes an allocation.
	if d.err != nil || count > uint64(len(d.b))/7 {
		return nil, errBadFileCache
	}
	m := make(map[string]CacheEntry, count)
	for range count {
		p := string(d.bytes(d.uvarint()))
		e := CacheEntry{Size: d.uvarint(), MTimeNs: d.varint(), CTimeNs: d.varint(), Inode: d.uvarint()}
		age := d.uvarint()
		n := d.uvarint()
		if n > uint64(len(d.b))/uint64(len(repository.ID{})) {
			return nil, errBadFileCache // also keeps n*32 from overflowing
		}
		raw := d.bytes(n * uint64(len(repository.ID{})))
		if d.err != nil || age >= cacheMaxAge {
			return nil, errBadFileCache
		}
		e.Age = int(age)
		if n > 0 {
			e.Content = make([]repository.ID, n)
			for i := range e.Content {
				copy(e.Content[i][:], raw[i*len(repository.ID{}):])
			}
		}
		m[p] = e
	}
	if len(d.b) != 0 {
		return nil, errBadFileCache
	}
	return m, nil
}

// cacheDecoder reads the fields of a cache file; the first problem sticks
// in err and every later read returns zero.
type cacheDecoder struct {
	b   []byte
	err error
}

func (d *cacheDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadFileCache
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads what binary.AppendVarint wrote: a zig-zag uvarint.
func (d *cacheDecoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *cacheDecoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errBadFileCache
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// Remove deletes the cache file.
func (c *FileCache) Remove() error {
	if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
