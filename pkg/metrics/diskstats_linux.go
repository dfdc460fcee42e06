package metrics

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/blockdevice"
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
// identity udev recorded for them.
type diskstatsCollector struct{ h *host }

func newDiskstatsCollector(h *host) (collector, error) { return &diskstatsCollector{h: h}, nil }

func (c *diskstatsCollector) Update(ch emitter) error {
	stats, err := c.h.block.ProcDiskstats()
	if err != nil {
		return fmt.Errorf("read %s: %w", c.h.procPath("diskstats"), err)
	}
	for _, s := range stats {
		if diskIgnored.MatchString(s.DeviceName) {
			continue
		}
		props := readUdevProps(filepath.Join(c.h.opts.UdevPath, fmt.Sprintf("b%d:%d", s.MajorNumber, s.MinorNumber)))
		for _, m := range diskMetrics(s, props, c.h.series) {
			ch(m)
		}
	}
	return nil
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
