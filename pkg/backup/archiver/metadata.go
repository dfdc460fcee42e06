package archiver

import (
	"errors"
	"os/user"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// nodeFromStat fills the metadata of a node from lstat.
func nodeFromStat(name string, st *unix.Stat_t, names *idNames) repository.Node {
	n := repository.Node{
		Name:    repository.Bytes(name),
		Mode:    st.Mode & 0o7777,
		UID:     st.Uid,
		GID:     st.Gid,
		User:    names.user(st.Uid),
		Group:   names.group(st.Gid),
		MTimeNs: st.Mtim.Nano(),
		CTimeNs: st.Ctim.Nano(),
		Inode:   st.Ino,
		Device:  st.Dev,
		Links:   uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = repository.NodeFile
		n.Size = uint64(st.Size)
		n.Sparse = st.Blocks*512 < st.Size
	case unix.S_IFDIR:
		n.Type = repository.NodeDir
	case unix.S_IFLNK:
		n.Type = repository.NodeSymlink
	case unix.S_IFIFO:
		n.Type = repository.NodeFIFO
	case unix.S_IFCHR:
		n.Type = repository.NodeCharDev
		n.Rdev = st.Rdev
	case unix.S_IFBLK:
		n.Type = repository.NodeBlockDev
		n.Rdev = st.Rdev
	case unix.S_IFSOCK:
		n.Type = repository.NodeSocket
	}
	return n
}

// readXattrs returns the extended attributes of the open file fd, or with
// fd < 0 of path (not following a symlink). scratch holds the list of
// names between calls.
func readXattrs(path string, fd int, scratch *[]byte) ([]repository.Xattr, error) {
	if len(*scratch) == 0 {
		*scratch = make([]byte, 1024)
	}
	var sz int
	var err error
	for {
		sz, err = listXattr(path, fd, *scratch)
		if errors.Is(err, unix.ERANGE) {
			*scratch = make([]byte, len(*scratch)*4)
			continue
		}
		break
	}
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil || sz == 0 {
		return nil, err
	}
	var out []repository.Xattr
	for _, name := range splitNull((*scratch)[:sz]) {
		val := make([]byte, 256)
		for {
			n, err := getXattr(path, fd, name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, len(val)*4)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				break
			}
			if err != nil {
				return nil, err
			}
			out = append(out, repository.Xattr{Name: repository.Bytes(name), Value: repository.Bytes(val[:n])})
			break
		}
	}
	return out, nil
}

// listXattr and getXattr read through fd when it is open (>= 0), else
// through path without following a symlink.
func listXattr(path string, fd int, buf []byte) (int, error) {
	if fd >= 0 {
		return unix.Flistxattr(fd, buf)
	}
	return unix.Llistxattr(path, buf)
}

func getXattr(path string, fd int, name string, buf []byte) (int, error) {
	if fd >= 0 {
		return unix.Fgetxattr(fd, name, buf)
	}
	return unix.Lgetxattr(path, name, buf)
}

func splitNull(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

// idNames caches uid/gid to name lookups.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newIDNames() *idNames {
	return &idNames{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (c *idNames) user(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.users[id]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.Itoa(int(id))); err == nil {
		n = u.Username
	}
	c.users[id] = n
	return n
}

func (c *idNames) group(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.groups[id]; ok {
		return n
	}
	n := ""
	if g, err := user.LookupGroupId(strconv.Itoa(int(id))); err == nil {
		n = g.Name
	}
	c.groups[id] = n
	return n
}
