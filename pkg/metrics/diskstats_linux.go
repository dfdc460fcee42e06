package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/blockdevice"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("diskstats", newDiskstatsCollector) }

// diskIgnored is node_exporter's default --collector.diskstats.device-exclude:
// partitions and RAM/loop devices would double-count I/O.
var diskIgnored = regexp.MustCompile(`^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`)

const diskSectorSize = 512

type diskDesc struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	scale float64
	get   func(s blockdevice.IOStats) uint64
	min   int // fields the kernel must report for this statistic
}

func newDiskDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "disk", name), help, []string{"device"}, nil)
}

var diskDescs = []diskDesc{
	{newDiskDesc("reads_completed_total", "The total number of reads completed successfully."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.ReadIOs }, 0},
	{newDiskDesc("reads_merged_total", "The total number of reads merged."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.ReadMerges }, 0},
	{newDiskDesc("read_bytes_total", "The total number of bytes read successfully."), prometheus.CounterValue, diskSectorSize, func(s blockdevice.IOStats) uint64 { return s.ReadSectors }, 0},
	{newDiskDesc("read_time_seconds_total", "The total number of seconds spent by all reads."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.ReadTicks }, 0},
	{newDiskDesc("writes_completed_total", "The total number of writes completed successfully."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.WriteIOs }, 0},
	{newDiskDesc("writes_merged_total", "The number of writes merged."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.WriteMerges }, 0},
	{newDiskDesc("written_bytes_total", "The total number of bytes written successfully."), prometheus.CounterValue, diskSectorSize, func(s blockdevice.IOStats) uint64 { return s.WriteSectors }, 0},
	{newDiskDesc("write_time_seconds_total", "This is the total number of seconds spent by all writes."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.WriteTicks }, 0},
	{newDiskDesc("io_now", "The number of I/Os currently in progress."), prometheus.GaugeValue, 1, func(s blockdevice.IOStats) uint64 { return s.IOsInProgress }, 0},
	{newDiskDesc("io_time_seconds_total", "Total seconds spent doing I/Os."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.IOsTotalTicks }, 0},
	{newDiskDesc("io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.WeightedIOTicks }, 0},
	{newDiskDesc("discards_completed_total", "The total number of discards completed successfully."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.DiscardIOs }, 18},
	{newDiskDesc("discards_merged_total", "The total number of discards merged."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.DiscardMerges }, 18},
	{newDiskDesc("discarded_sectors_total", "The total number of sectors discarded successfully."), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.DiscardSectors }, 18},
	{newDiskDesc("discard_time_seconds_total", "This is the total number of seconds spent by all discards."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.DiscardTicks }, 18},
	{newDiskDesc("flush_requests_total", "The total number of flush requests completed successfully"), prometheus.CounterValue, 1, func(s blockdevice.IOStats) uint64 { return s.FlushRequestsCompleted }, 20},
	{newDiskDesc("flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests."), prometheus.CounterValue, .001, func(s blockdevice.IOStats) uint64 { return s.TimeSpentFlushing }, 20},
}

var diskInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "disk", "info"),
	"Info of /sys/block/<block_device>.",
	[]string{"device", "major", "minor", "path", "wwn", "model", "serial", "revision"}, nil)

// diskstatsCollector exports /proc/diskstats for whole disks, with the
// identity udev recorded for them. It parses the file itself (procfs
// parses every line with fmt.Sscanf, partitions and loop devices
// included, a third of the collector's time) and reads a disk's udev
// entry again only when the file changed.
type diskstatsCollector struct {
	h *host

	mu    sync.Mutex // guards what follows between concurrent gathers
	buf   []byte
	stats []blockdevice.Diskstats
	names map[string]diskName   // device names seen, and whether they are ignored
	udev  map[string]*udevEntry // by path
}

type diskName struct {
	name    string
	ignored bool
}

// udevEntry is a udev database entry as it was read, with what tells its
// file from a rewritten one (udev writes a new file and renames it).
type udevEntry struct {
	ino, size  uint64
	mtim, ctim unix.Timespec
	props      map[string]string
}

// maxNames bounds the names a collector keeps between scrapes (device
// and interface names, udev entries); a host that made more (loop
// devices and veth interfaces come and go) starts them afresh.
const maxNames = 4096

func newDiskstatsCollector(h *host) (collector, error) {
	return &diskstatsCollector{h: h, names: map[string]diskName{}, udev: map[string]*udevEntry{}}, nil
}

func (c *diskstatsCollector) Update(ch emitter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.h.procPath("diskstats")
	var err error
	if c.buf, err = c.h.files.readFileReuse(path, c.buf); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if c.stats, err = c.parse(c.buf, c.stats[:0]); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	for _, s := range c.stats {
		props := c.udevProps(filepath.Join(c.h.opts.UdevPath, "b"+strconv.FormatUint(uint64(s.MajorNumber), 10)+":"+strconv.FormatUint(uint64(s.MinorNumber), 10)))
		for _, m := range diskMetrics(s, props, c.h.series) {
			ch(m)
		}
	}
	return nil
}

// parse appends the disks of /proc/diskstats that diskIgnored does not
// leave out to out, as procfs' ProcDiskstats reads them: IoStatsCount is
// the number of fields on the line, and a line of fewer than 14 is
// skipped.
func (c *diskstatsCollector) parse(b []byte, out []blockdevice.Diskstats) ([]blockdevice.Diskstats, error) {
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		majF, rest := nextField(line)
		minF, rest := nextField(rest)
		nameF, rest := nextField(rest)
		if nameF == nil {
			if majF != nil {
				return out, fmt.Errorf("line %d: %d fields", n, len(bytes.Fields(line)))
			}
			continue
		}
		dn, ok := c.names[string(nameF)]
		if !ok {
			if len(c.names) >= maxNames {
				clear(c.names)
			}
			dn = diskName{name: string(nameF)}
			dn.ignored = diskIgnored.MatchString(dn.name)
			c.names[dn.name] = dn
		}
		if dn.ignored {
			continue
		}
		maj, err1 := strconv.ParseUint(string(majF), 10, 32)
		min, err2 := strconv.ParseUint(string(minF), 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		d := blockdevice.Diskstats{Info: blockdevice.Info{MajorNumber: uint32(maj), MinorNumber: uint32(min), DeviceName: dn.name}}
		fields := []*uint64{&d.ReadIOs, &d.ReadMerges, &d.ReadSectors, &d.ReadTicks,
			&d.WriteIOs, &d.WriteMerges, &d.WriteSectors, &d.WriteTicks,
			&d.IOsInProgress, &d.IOsTotalTicks, &d.WeightedIOTicks,
			&d.DiscardIOs, &d.DiscardMerges, &d.DiscardSectors, &d.DiscardTicks,
			&d.FlushRequestsCompleted, &d.TimeSpentFlushing}
		d.IoStatsCount = 3
		for _, dst := range fields {
			var f []byte
			if f, rest = nextField(rest); f == nil {
				break
			}
			v, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return out, fmt.Errorf("line %d (%s): %w", n, dn.name, err)
			}
			*dst = v
			d.IoStatsCount++
		}
		if d.IoStatsCount >= 14 {
			out = append(out, d)
		}
	}
	return out, nil
}

// udevProps returns the properties of the udev entry at path, read again
// only when its file changed; a missing entry (no udev, as in
// containers) gives none.
func (c *diskstatsCollector) udevProps(path string) map[string]string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		delete(c.udev, path)
		return map[string]string{}
	}
	if e, ok := c.udev[path]; ok && e.ino == st.Ino && e.size == uint64(st.Size) && e.mtim == st.Mtim && e.ctim == st.Ctim {
		return e.props
	}
	if len(c.udev) >= maxNames {
		clear(c.udev)
	}
	props := readUdevProps(path)
	c.udev[path] = &udevEntry{ino: st.Ino, size: uint64(st.Size), mtim: st.Mtim, ctim: st.Ctim, props: props}
	return props
}

func diskMetrics(s blockdevice.Diskstats, udev map[string]string, sc *seriesCache) []prometheus.Metric {
	out := []prometheus.Metric{sc.metric(diskInfoDesc, prometheus.GaugeValue, 1,
		s.DeviceName, strconv.Itoa(int(s.MajorNumber)), strconv.Itoa(int(s.MinorNumber)),
		udev["ID_PATH"], udev["ID_WWN"], udev["ID_MODEL"], udev["ID_SERIAL_SHORT"], udev["ID_REVISION"])}
	for _, d := range diskDescs {
		if s.IoStatsCount < d.min {
			continue
		}
		out = append(out, sc.metric(d.desc, d.typ, float64(d.get(s.IOStats))*d.scale, s.DeviceName))
	}
	return out
}

// readUdevProps reads the "E:KEY=value" lines of a udev database entry; a
// missing entry (no udev, as in containers) gives an empty map.
func readUdevProps(path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		return map[string]string{}
	}
	defer f.Close()
	return parseUdevProps(f)
}

func parseUdevProps(r io.Reader) map[string]string {
	props := map[string]string{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		line, ok := strings.CutPrefix(s.Text(), "E:")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	return props
}
