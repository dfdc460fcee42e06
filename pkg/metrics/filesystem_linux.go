package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("filesystem", newFilesystemCollector) }

// Defaults of Debian's node_exporter --collector.filesystem.mount-points-
// exclude and fs-types-exclude: pseudo filesystems, overlay mounts, and
// what is mounted below /dev, /proc, /run, /sys, /mnt and /media.
const (
	DefaultFSMountPointsExclude = `^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
	DefaultFSTypesExclude       = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$`
)

var fsLabels = []string{"device", "mountpoint", "fstype"}

func newFSDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "filesystem", name), help, fsLabels, nil)
}

var (
	fsSizeDesc      = newFSDesc("size_bytes", "Filesystem size in bytes.")
	fsFreeDesc      = newFSDesc("free_bytes", "Filesystem free space in bytes.")
	fsAvailDesc     = newFSDesc("avail_bytes", "Filesystem space available to non-root users in bytes.")
	fsFilesDesc     = newFSDesc("files", "Filesystem total file nodes.")
	fsFilesFreeDesc = newFSDesc("files_free", "Filesystem total free file nodes.")
	fsReadOnlyDesc  = newFSDesc("readonly", "Filesystem read-only status.")
	fsErrorDesc     = newFSDesc("device_error", "Whether an error occurred while getting statistics for the given device.")
)

// filesystemCollector exports space and inode usage of real mounts. A
// statfs that could wait on a server or a device (a network or FUSE
// filesystem, or any mount whose path goes through one) runs with a
// timeout in a goroutine of its own; a mount that does not answer is
// reported as a device error and not asked again until the hung call
// returns, so one bad mount never blocks a scrape. The statfs of a
// filesystem the kernel answers from memory (inCoreFS) runs in the
// scrape's goroutine: starting a goroutine woke another thread of the
// process, which cost more than the call.
type filesystemCollector struct {
	h *host

	mu    sync.Mutex
	stuck map[string]bool // mount points with a statfs still running
	// The mount table: raw is the last read's buffer, parsed the contents
	// selected was computed from, path the file read.
	raw, parsed []byte
	selected    []mount
	path        string
}

func newFilesystemCollector(h *host) (collector, error) {
	return &filesystemCollector{h: h, stuck: map[string]bool{}}, nil
}

type mount struct {
	device, mountPoint, fsType string
	readOnly                   bool
	path                       string // what statfs is called with: the mount point below RootPath
	// inCore tells that the mount's statfs cannot wait: its filesystem
	// and every mount its path goes through are inCoreFS.
	inCore bool
}

type fsStats struct {
	mount
	size, free, avail, files, filesFree float64
	err                                 bool
}

func (c *filesystemCollector) Update(ch emitter) error {
	mounts, err := c.mounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		s := c.stat(m)
		for _, metric := range fsMetrics(s, c.h.series) {
			ch(metric)
		}
	}
	return nil
}

// mounts reads PID 1's mount table (the host's, even when hostd runs in its
// own mount namespace), falling back to our own. The table rarely changes:
// while the file is kept open it is read again only when the kernel
// signals a mount or unmount (openFiles.mountsChanged), and parsed again
// only when its contents differ from the last scrape's.
func (c *filesystemCollector) mounts() ([]mount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pid1 := c.h.procPath("1", "mountinfo")
	if c.parsed != nil && !c.h.files.mountsChanged(c.path) {
		return c.selected, nil
	}
	raw, err := c.h.files.readFileReuse(pid1, c.raw)
	self := err != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission))
	if self {
		raw, err = c.h.files.readFileReuse(c.h.procPath("self", "mountinfo"), raw)
	}
	c.raw, c.path = raw, pid1
	if self {
		c.path = c.h.procPath("self", "mountinfo")
	}
	if err == nil && c.parsed != nil && bytes.Equal(raw, c.parsed) {
		return c.selected, nil
	}
	// Parsed by procfs from a read of its own; should the table change in
	// between, the next scrape sees raw differ from parsed and parses again.
	var infos []*procfs.MountInfo
	if self {
		if infos, err = c.h.proc.GetMounts(); err != nil {
			return nil, fmt.Errorf("read %s: %w", c.h.procPath("self", "mountinfo"), err)
		}
	} else if infos, err = c.h.proc.GetProcMounts(1); err != nil {
		return nil, fmt.Errorf("read %s: %w", pid1, err)
	}
	c.selected = selectMounts(infos, c.h.opts.RootPath, c.h.opts.FSMountPointsExclude, c.h.opts.FSTypesExclude)
	c.parsed = append(c.parsed[:0], raw...)
	return c.selected, nil
}

// selectMounts drops the mount points and filesystem types the patterns
// exclude and maps mount points below rootPath back to the host's view.
func selectMounts(infos []*procfs.MountInfo, rootPath string, mountsExclude, typesExclude *regexp.Regexp) []mount {
	var out []mount
	seen := map[string]bool{}
	for _, mi := range infos {
		mp := mi.MountPoint
		if rootPath != "/" {
			rel, ok := strings.CutPrefix(mp, strings.TrimSuffix(rootPath, "/"))
			if !ok {
				continue
			}
			if mp = rel; mp == "" {
				mp = "/"
			}
		}
		if mountsExclude.MatchString(mp) || typesExclude.MatchString(mi.FSType) {
			continue
		}
		key := mi.Source + "\x00" + mp
		if seen[key] {
			continue
		}
		seen[key] = true
		_, ro := mi.Options["ro"]
		// Below another root (hostd in a container, the host's root
		// mounted at rootPath) the path walk also goes through mounts
		// of hostd's own namespace, which infos does not show. With
		// rootPath "/", mp is the mount point as infos has it.
		inCore := rootPath == "/" && walksInCore(infos, mp)
		out = append(out, mount{device: mi.Source, mountPoint: mp, fsType: mi.FSType, readOnly: ro,
			path: filepath.Join(rootPath, mp), inCore: inCore})
	}
	return out
}

// inCoreFS tells the filesystems whose statfs the kernel answers from
// counters it keeps in memory, without asking a device or a server, and
// whose path lookups do not either once the path was walked before.
// Network, FUSE and other filesystems can leave a statfs waiting for ever.
func inCoreFS(fsType string) bool {
	switch fsType {
	case "ext2", "ext3", "ext4", "xfs", "vfat", "msdos", "exfat", "f2fs",
		"tmpfs", "ramfs", "devtmpfs", "proc", "sysfs":
		return true
	}
	return false
}

// walksInCore tells whether a statfs of mount point mp, path walk and
// all, stays on inCoreFS filesystems: every mount in infos at mp or at a
// directory above it is one.
func walksInCore(infos []*procfs.MountInfo, mp string) bool {
	for _, mi := range infos {
		p := mi.MountPoint
		above := p == "/" || p == mp || (strings.HasPrefix(mp, p) && mp[len(p)] == '/')
		if above && !inCoreFS(mi.FSType) {
			return false
		}
	}
	return true
}

func (c *filesystemCollector) stat(m mount) fsStats {
	s := fsStats{mount: m}
	var buf unix.Statfs_t
	if m.inCore {
		if err := c.h.statfs(m.path, &buf); err != nil {
			s.err = true
			return s
		}
	} else if !c.statBounded(m, &buf) {
		s.err = true
		return s
	}
	bs := float64(buf.Bsize)
	s.size = float64(buf.Blocks) * bs
	s.free = float64(buf.Bfree) * bs
	s.avail = float64(buf.Bavail) * bs
	s.files = float64(buf.Files)
	s.filesFree = float64(buf.Ffree)
	return s
}

// statBounded runs the statfs of a mount that can hang in a goroutine,
// waiting at most MountTimeout, and tells whether it answered. A mount
// whose call is still running from an earlier scrape is not asked again.
func (c *filesystemCollector) statBounded(m mount, buf *unix.Statfs_t) bool {
	c.mu.Lock()
	if c.stuck[m.path] {
		c.mu.Unlock()
		return false
	}
	c.stuck[m.path] = true
	c.mu.Unlock()

	type result struct {
		buf unix.Statfs_t
		err error
	}
	done := make(chan result, 1)
	go func() {
		// This goroutine may outlive the scrape when the mount hangs; it
		// clears the stuck mark whenever the kernel finally answers.
		var r result
		r.err = c.h.statfs(m.path, &r.buf)
		c.mu.Lock()
		delete(c.stuck, m.path)
		c.mu.Unlock()
		done <- r
	}()
	timer := time.NewTimer(c.h.opts.MountTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		*buf = r.buf
		return r.err == nil
	case <-timer.C:
		c.h.logger.Debug("statfs timed out; mount skipped until it answers", "mountpoint", m.mountPoint)
		return false
	}
}

func fsMetrics(s fsStats, sc *seriesCache) []prometheus.Metric {
	l := []string{s.device, s.mountPoint, s.fsType}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	out := []prometheus.Metric{
		sc.metric(fsErrorDesc, prometheus.GaugeValue, b2f(s.err), l...),
	}
	if s.err {
		return out
	}
	return append(out,
		sc.metric(fsReadOnlyDesc, prometheus.GaugeValue, b2f(s.readOnly), l...),
		sc.metric(fsSizeDesc, prometheus.GaugeValue, s.size, l...),
		sc.metric(fsFreeDesc, prometheus.GaugeValue, s.free, l...),
		sc.metric(fsAvailDesc, prometheus.GaugeValue, s.avail, l...),
		sc.metric(fsFilesDesc, prometheus.GaugeValue, s.files, l...),
		sc.metric(fsFilesFreeDesc, prometheus.GaugeValue, s.filesFree, l...),
	)
}
