package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// gatherer gathers hostd's own registry plus the registry of each current
// service instance. Replacing a service replaces its registry, so a
// restarted service registers its collectors afresh.
type gatherer struct {
	root *registry
	mu   sync.Mutex
	regs map[string]*registry
}

func newGatherer(root *registry) *gatherer {
	return &gatherer{root: root, regs: map[string]*registry{}}
}

// fresh returns a new registry for the named service, replacing the old.
func (g *gatherer) fresh(name string) *registry {
	r := newRegistry()
	g.mu.Lock()
	g.regs[name] = r
	g.mu.Unlock()
	return r
}

func (g *gatherer) drop(name string) {
	g.mu.Lock()
	delete(g.regs, name)
	g.mu.Unlock()
}

// list returns the root registry and the services' registries in the
// order of their names, leaving out skip (nil: none).
func (g *gatherer) list(skip prometheus.Registerer) []*registry {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.regs))
	for n := range g.regs {
		names = append(names, n)
	}
	slices.Sort(names)
	rs := make([]*registry, 0, 1+len(names))
	rs = append(rs, g.root)
	for _, n := range names {
		if r := g.regs[n]; skip == nil || prometheus.Registerer(r) != skip {
			rs = append(rs, r)
		}
	}
	return rs
}

// registries returns what list does as gatherers.
func (g *gatherer) registries(skip prometheus.Registerer) prometheus.Gatherers {
	rs := g.list(skip)
	gs := make(prometheus.Gatherers, len(rs))
	for i, r := range rs {
		gs[i] = r
	}
	return gs
}

// CollectorsExcept returns the collectors registered in every registry
// but skip (a service's env.Metrics), in the order of the registries and
// of their registration: the metrics service collects them straight
// into its TSDB with its own, as it does the node collectors, where a
// gather started a goroutine per collector, allocated two 1,000-metric
// channels per registry and built families the scraper took apart again
// (about a tenth of the service's CPU at a one-second interval). Each
// was checked against the others of its registry when it was registered.
func (g *gatherer) CollectorsExcept(skip prometheus.Registerer) []prometheus.Collector {
	var out []prometheus.Collector
	for _, r := range g.list(skip) {
		out = r.appendCollectors(out)
	}
	return out
}

// Gather implements prometheus.Gatherer.
//
// Each registry checks its own metrics as it gathers them (names, label
// consistency, duplicate series). Registries that share no family name
// cannot hold the same series, so their families are merged as they are;
// only when a family name appears in two registries does the gather go
// through prometheus.Gatherers, which checks every metric again across
// registries (what it did every gather before, about a tenth of the
// metrics service's CPU at a one-second interval).
func (g *gatherer) Gather() ([]*dto.MetricFamily, error) {
	return gatherAll(g.registries(nil))
}

// gatherAll merges the families of gs, as Gather describes.
func gatherAll(gs prometheus.Gatherers) ([]*dto.MetricFamily, error) {
	var (
		all  []*dto.MetricFamily
		errs prometheus.MultiError
	)
	types := map[string]dto.MetricType{}
	for i, r := range gs {
		mfs, err := r.Gather()
		if err != nil {
			var me prometheus.MultiError
			if errors.As(err, &me) {
				for _, err := range me {
					errs = append(errs, fmt.Errorf("[from Gatherer #%d] %w", i+1, err))
				}
			} else {
				errs = append(errs, fmt.Errorf("[from Gatherer #%d] %w", i+1, err))
			}
		}
		for _, mf := range mfs {
			if _, dup := types[mf.GetName()]; dup {
				return gs.Gather()
			}
			types[mf.GetName()] = mf.GetType()
		}
		all = append(all, mfs...)
	}
	// A family named like a summary's or histogram's _count, _sum or
	// _bucket series collides with it in the text format;
	// prometheus.Gatherers reports which.
	for name := range types {
		for _, suffix := range []string{"_count", "_sum", "_bucket"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				switch types[base] {
				case dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
					return gs.Gather()
				}
			}
		}
	}
	slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return all, errs.MaybeUnwrap()
}

// registry is a prometheus.Registry that keeps the collectors registered
// in it, in order (CollectorsExcept).
type registry struct {
	*prometheus.Registry
	mu sync.Mutex
	cs []prometheus.Collector
}

var _ prometheus.Registerer = (*registry)(nil)

func newRegistry() *registry { return &registry{Registry: prometheus.NewRegistry()} }

// Register implements prometheus.Registerer.
func (r *registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

// MustRegister implements prometheus.Registerer.
func (r *registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer. A collector of a type
// that cannot be compared has no identity to find it by; it stays in the
// list, and its metrics go on being collected.
func (r *registry) Unregister(c prometheus.Collector) bool {
	if !r.Registry.Unregister(c) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reflect.TypeOf(c).Comparable() {
		if i := slices.Index(r.cs, c); i >= 0 {
			r.cs = slices.Delete(r.cs, i, i+1)
		}
	}
	return true
}

// appendCollectors appends the collectors registered to out.
func (r *registry) appendCollectors(out []prometheus.Collector) []prometheus.Collector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(out, r.cs...)
}

// processCollector exports the daemon's process_* metrics as
// client_golang's process collector does (the families node_exporter
// exports of itself), without its process_network_* pair: that is the
// network namespace's IpExt octet counters from /proc/self/net/netstat,
// which the metrics service's netstat collector exports already as
// node_netstat_IpExt_InOctets and _OutOctets, and parsing the file cost as
// much as that collector.
//
// It reads the same figures more cheaply, as it runs every scrape: the
// start time once (client_golang parses all of /proc/stat for the boot
// time at every collection); CPU time from getrusage(2) instead of
// /proc/self/stat read with fmt.Fscan (the same utime+stime of every
// thread, to the microsecond instead of the clock tick); virtual and
// resident size from /proc/self/statm (the same page counts /proc/self/stat
// reports); and the limits from getrlimit(2) instead of parsing
// /proc/self/limits with a regular expression per line.
type processCollector struct {
	proc                                   procfs.Proc
	statm                                  string // /proc/PID/statm
	fdDir                                  string // /proc/PID/fd
	pageSize                               float64
	start                                  float64 // 0: unknown
	cpu, fds, maxFDs, vsize, maxVsize, rss *prometheus.Desc
	startTime                              *prometheus.Desc
}

func newProcessCollector() *processCollector {
	c := &processCollector{
		cpu:       prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil),
		fds:       prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil),
		maxFDs:    prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil),
		vsize:     prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil),
		maxVsize:  prometheus.NewDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", nil, nil),
		rss:       prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil),
		startTime: prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil),
		pageSize:  float64(os.Getpagesize()),
	}
	p, err := procfs.Self()
	if err != nil {
		return c // collects nothing, as client_golang's without /proc
	}
	c.proc = p
	c.statm = "/proc/" + strconv.Itoa(p.PID) + "/statm"
	c.fdDir = "/proc/" + strconv.Itoa(p.PID) + "/fd"
	if st, err := p.Stat(); err == nil {
		if t, err := st.StartTime(); err == nil {
			c.start = t
		}
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.fds, c.maxFDs, c.vsize, c.maxVsize, c.rss, c.startTime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. As client_golang's collector
// does by default, a figure it cannot read is left out.
func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	if c.proc.PID == 0 {
		return
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err == nil {
		cpu := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, cpu)
	}
	if vsize, rss, err := readStatm(c.statm); err == nil {
		ch <- prometheus.MustNewConstMetric(c.vsize, prometheus.GaugeValue, float64(vsize)*c.pageSize)
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(rss)*c.pageSize)
	}
	if c.start != 0 {
		ch <- prometheus.MustNewConstMetric(c.startTime, prometheus.GaugeValue, c.start)
	}
	if n, err := c.openFDs(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.fds, prometheus.GaugeValue, float64(n))
	}
	var files, as unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &files) == nil && unix.Getrlimit(unix.RLIMIT_AS, &as) == nil {
		// RLIM_INFINITY is the largest uint64, as /proc/self/limits'
		// "unlimited" reads in procfs.
		ch <- prometheus.MustNewConstMetric(c.maxFDs, prometheus.GaugeValue, float64(files.Cur))
		ch <- prometheus.MustNewConstMetric(c.maxVsize, prometheus.GaugeValue, float64(as.Cur))
	}
}

// openFDs counts the process' open descriptors: the size stat(2) gives
// /proc/PID/fd (Linux 6.2 and later), else the entries listed there, as
// client_golang does (a string per descriptor, every scrape).
func (c *processCollector) openFDs() (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(c.fdDir, &st); err == nil && st.Size > 0 {
		return int(st.Size), nil
	}
	return c.proc.FileDescriptorsLen()
}

// readStatm reads the first two fields of /proc/PID/statm: the virtual
// size and the resident set, in pages. It opens the file with open(2)
// of its own: os.Open registers a /proc file with the runtime's poller,
// two epoll_ctl calls per scrape.
func readStatm(path string) (size, resident uint64, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [128]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	fields := strings.Fields(string(buf[:n]))
	if len(fields) < 2 {
		return 0, 0, fmt.Errorf("read %s: %d fields, want at least 2", path, len(fields))
	}
	if size, err = strconv.ParseUint(fields[0], 10, 64); err == nil {
		resident, err = strconv.ParseUint(fields[1], 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return size, resident, nil
}
