package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
	"github.com/prometheus/procfs/sysfs"
)

// namespace is the metric prefix shared by all node collectors, kept equal
// to node_exporter's so existing dashboards work unchanged.
const namespace = "node"

// errNoData tells the node collector that a collector found nothing to
// report on this host (no hwmon chips, no thermal zones). It is reported as
// node_scrape_collector_success 0 but not logged as a failure.
var errNoData = errors.New("collector returned no data")

// collector is one node collector: it reads its source and hands each
// metric to emit.
type collector interface {
	Update(emit emitter) error
}

// emitter takes the metrics of a collection: sends them on a registry's
// channel (Collect) or appends them to the TSDB as they come
// (CollectTo, the scraper's direct path).
type emitter func(prometheus.Metric)

// collectorFactory builds a collector from the shared host view.
type collectorFactory func(h *host) (collector, error)

// factories maps collector names to their constructors. It is filled by
// init() functions in the collector files and never changed afterwards.
var factories = map[string]collectorFactory{}

func registerCollector(name string, f collectorFactory) {
	if _, dup := factories[name]; dup {
		panic("metrics: collector registered twice: " + name)
	}
	factories[name] = f
}

// DefaultCollectorNames lists the collectors that run when the config
// names none: every one, sorted, as node_exporter's defaults are all on
// (netstat included: dashboards built for node_exporter chart its
// protocol counters).
func DefaultCollectorNames() []string { return CollectorNames() }

// CollectorNames lists every node collector hostd knows, sorted.
func CollectorNames() []string {
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HostOptions says where the node collectors read the host from.
type HostOptions struct {
	ProcPath string // default "/proc"
	SysPath  string // default "/sys"
	RootPath string // default "/"; mount points are reported relative to it
	UdevPath string // default "/run/udev/data"

	// MountTimeout bounds one statfs call of the filesystem collector; a
	// mount that does not answer in time (a stuck NFS server) is reported
	// with node_filesystem_device_error 1 and skipped until it answers.
	MountTimeout time.Duration // default 5s

	// FSMountPointsExclude and FSTypesExclude are the mount points and
	// filesystem types the filesystem collector leaves out; defaults
	// DefaultFSMountPointsExclude and DefaultFSTypesExclude.
	FSMountPointsExclude, FSTypesExclude *regexp.Regexp

	// TextfileDir is the directory whose *.prom files the textfile
	// collector exports; empty exports none.
	TextfileDir string

	// Now is the clock of the time collector; default time.Now.
	Now func() time.Time
}

// host is the view of the machine shared by all collectors.
type host struct {
	opts   HostOptions
	proc   procfs.FS
	sys    sysfs.FS
	block  blockdevice.FS
	statfs statfsFunc
	uname  unameFunc
	pageSz int
	logger *slog.Logger
	// series keeps the label pairs of the collectors' series between
	// scrapes (seriesCache).
	series *seriesCache
	// files keeps the files the collectors read every scrape open
	// while the metrics service serves (openFiles).
	files *openFiles
	// links lists the interfaces for the netclass and netdev collectors
	// with a netlink dump; nil when they read other paths than the
	// host's /sys and /proc (fixtures), which they then read only.
	links *linkDumper
	paths pathCache
}

// netLinks returns this collection's link dump (linkDumper), or
// ok false where the collectors read sysfs and /proc/net/dev only.
func (h *host) netLinks() (links []netLink, ok bool, err error) {
	if h.links == nil {
		return nil, false, nil
	}
	round, keep := h.files.state()
	links, err = h.links.dump(round, keep)
	return links, true, err
}

func (h *host) procPath(parts ...string) string { return h.paths.join(h.opts.ProcPath, parts) }

func (h *host) sysPath(parts ...string) string { return h.paths.join(h.opts.SysPath, parts) }

// pathCache remembers the paths the collectors join every scrape: the
// same few dozen, each a string built anew by filepath.Join otherwise.
// The zero value is ready.
type pathCache struct {
	mu sync.Mutex
	m  map[pathKey]string
}

// pathKey is a path by its parts; a path of more parts is not cached.
type pathKey [5]string

// maxPaths bounds the paths remembered; the collectors join fewer.
const maxPaths = 256

// join returns filepath.Join of root and parts.
func (c *pathCache) join(root string, parts []string) string {
	if len(parts) >= len(pathKey{}) {
		return filepath.Join(append([]string{root}, parts...)...)
	}
	var k pathKey
	k[0] = root
	copy(k[1:], parts)
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[k]; ok {
		return p
	}
	p := filepath.Join(append([]string{root}, parts...)...)
	if c.m == nil {
		c.m = map[pathKey]string{}
	}
	if len(c.m) < maxPaths {
		c.m[k] = p
	}
	return p
}

func newHost(opts HostOptions, logger *slog.Logger) (*host, error) {
	if opts.ProcPath == "" {
		opts.ProcPath = "/proc"
	}
	if opts.SysPath == "" {
		opts.SysPath = "/sys"
	}
	if opts.RootPath == "" {
		opts.RootPath = "/"
	}
	if opts.UdevPath == "" {
		opts.UdevPath = "/run/udev/data"
	}
	if opts.MountTimeout <= 0 {
		opts.MountTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FSMountPointsExclude == nil {
		opts.FSMountPointsExclude = regexp.MustCompile(DefaultFSMountPointsExclude)
	}
	if opts.FSTypesExclude == nil {
		opts.FSTypesExclude = regexp.MustCompile(DefaultFSTypesExclude)
	}
	proc, err := procfs.NewFS(opts.ProcPath)
	if err != nil {
		return nil, fmt.Errorf("open procfs %s: %w", opts.ProcPath, err)
	}
	sys, err := sysfs.NewFS(opts.SysPath)
	if err != nil {
		return nil, fmt.Errorf("open sysfs %s: %w", opts.SysPath, err)
	}
	block, err := blockdevice.NewFS(opts.ProcPath, opts.SysPath)
	if err != nil {
		return nil, fmt.Errorf("open block devices: %w", err)
	}
	var links *linkDumper
	if opts.SysPath == "/sys" && opts.ProcPath == "/proc" {
		links = &linkDumper{}
	}
	return &host{
		links:  links,
		opts:   opts,
		proc:   proc,
		sys:    sys,
		block:  block,
		statfs: unixStatfs,
		uname:  unixUname,
		pageSz: pageSize(),
		logger: logger,
		series: &seriesCache{},
		files:  &openFiles{},
	}, nil
}

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_duration_seconds"),
		"node_exporter: Duration of a collector scrape.",
		[]string{"collector"}, nil,
	)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "scrape", "collector_success"),
		"node_exporter: Whether a collector succeeded.",
		[]string{"collector"}, nil,
	)
)

// NodeCollector runs the enabled node collectors on every Collect and
// implements prometheus.Collector. A collector that fails drops only its
// own metrics; the failure is logged once when it starts and once when the
// collector recovers, not on every scrape.
type NodeCollector struct {
	host       *host
	names      []string
	collectors map[string]collector
	logger     *slog.Logger

	mu      sync.Mutex
	failing map[string]string // collector name -> last error text
}

var _ prometheus.Collector = (*NodeCollector)(nil)

// NewNodeCollector builds the named collectors (all of CollectorNames when
// names is nil, none when it is empty) reading the host described by opts.
func NewNodeCollector(opts HostOptions, names []string, logger *slog.Logger) (*NodeCollector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := newHost(opts, logger)
	if err != nil {
		return nil, err
	}
	return newNodeCollector(h, names, logger)
}

func newNodeCollector(h *host, names []string, logger *slog.Logger) (*NodeCollector, error) {
	if names == nil {
		names = CollectorNames()
	}
	n := &NodeCollector{
		host:       h,
		collectors: make(map[string]collector, len(names)),
		logger:     logger,
		failing:    map[string]string{},
	}
	for _, name := range names {
		f, ok := factories[name]
		if !ok {
			return nil, fmt.Errorf("unknown collector %q (known: %v)", name, CollectorNames())
		}
		c, err := f(h)
		if err != nil {
			return nil, fmt.Errorf("create collector %s: %w", name, err)
		}
		n.collectors[name] = c
		n.names = append(n.names, name)
	}
	sort.Strings(n.names)
	return n, nil
}

// Names returns the enabled collectors, sorted.
func (n *NodeCollector) Names() []string { return append([]string(nil), n.names...) }

// Owns tells whether a metric family comes from the node collectors: the
// node_ families and those the textfile collector last read.
func (n *NodeCollector) Owns(family string) bool {
	if strings.HasPrefix(family, namespace+"_") {
		return true
	}
	tf, ok := n.collectors["textfile"].(*textfileCollector)
	return ok && tf.owns(family)
}

// Failing returns the collectors whose last run failed, with the error.
func (n *NodeCollector) Failing() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.failing))
	for k, v := range n.failing {
		out[k] = v
	}
	return out
}

// Describe sends nothing: the set of node metrics depends on the host, so
// the collector is registered as unchecked, like node_exporter's.
func (n *NodeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect runs every enabled collector, one after the other in the
// caller's goroutine. They read small /proc and /sys files, so running
// them concurrently saved no time and cost a goroutine (and its stack
// growth) per collector per scrape; the one collector whose calls can
// hang, filesystem's statfs on a stuck mount, bounds them itself
// (HostOptions.MountTimeout).
func (n *NodeCollector) Collect(ch chan<- prometheus.Metric) {
	n.CollectTo(func(m prometheus.Metric) { ch <- m })
}

// CollectTo runs every enabled collector as Collect does, handing each
// metric to emit in the caller's goroutine: the scraper appends them
// without a channel between two goroutines (a wake-up of the appending
// one for nearly every metric).
func (n *NodeCollector) CollectTo(emit func(prometheus.Metric)) {
	for _, name := range n.names {
		n.run(name, n.collectors[name], emit)
	}
	n.host.series.endRound()
	n.host.files.endRound()
}

// keepFilesOpen keeps the files the collectors read every scrape open
// from one collection to the next, until closeFiles (openFiles).
func (n *NodeCollector) keepFilesOpen() { n.host.files.keep() }

// closeFiles closes the files kept open and opens them on every read
// again.
func (n *NodeCollector) closeFiles() {
	n.host.files.close()
	if n.host.links != nil {
		n.host.links.closeSocket()
	}
}

func (n *NodeCollector) run(name string, c collector, emit emitter) {
	start := time.Now()
	err := c.Update(emit)
	dur := time.Since(start).Seconds()
	success := 1.0
	if err != nil {
		success = 0
	}
	n.noteResult(name, err)
	emit(n.host.series.metric(scrapeDurationDesc, prometheus.GaugeValue, dur, name))
	emit(n.host.series.metric(scrapeSuccessDesc, prometheus.GaugeValue, success, name))
}

// noteResult logs a collector's failure when it begins and its recovery,
// so a host where one collector cannot work logs once, not every scrape.
func (n *NodeCollector) noteResult(name string, err error) {
	n.mu.Lock()
	_, wasFailing := n.failing[name]
	switch {
	case err == nil:
		delete(n.failing, name)
	case errors.Is(err, errNoData):
		// Nothing to report on this host: not a failure worth a log line.
		err = nil
		delete(n.failing, name)
	default:
		n.failing[name] = err.Error()
	}
	n.mu.Unlock()
	switch {
	case err != nil && !wasFailing:
		n.logger.Warn("collector failed; its metrics are dropped until it recovers", "collector", name, "err", err)
	case err == nil && wasFailing:
		n.logger.Info("collector recovered", "collector", name)
	}
}
