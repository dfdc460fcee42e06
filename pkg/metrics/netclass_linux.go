package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("netclass", newNetclassCollector) }

var (
	netInfoDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "info"),
		"Non-numeric data from /sys/class/net/<iface>, value is always 1.",
		[]string{"device", "address", "broadcast", "duplex", "operstate", "ifalias"}, nil)
	netUpDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", "up"),
		"Value is 1 if operstate is 'up', 0 otherwise.", []string{"device"}, nil)
)

// netclassCollector exports interface properties as /sys/class/net shows
// them: from the link dump and sysfs on the host (readNetClassLinks),
// from sysfs alone elsewhere (readNetClass).
type netclassCollector struct {
	h     *host
	descs descCache
}

func newNetclassCollector(h *host) (collector, error) {
	return &netclassCollector{h: h}, nil
}

func (c *netclassCollector) Update(ch emitter) error {
	dir := c.h.sysPath("class", "net")
	var nc sysfs.NetClass
	links, ok, err := c.h.netLinks()
	if ok && err == nil {
		nc = readNetClassLinks(dir, c.h.files, links)
	} else {
		// Without the dump (a sandbox without netlink), sysfs alone.
		nc, err = readNetClass(dir, c.h.files)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoData
		}
		return fmt.Errorf("read %s: %w", c.h.sysPath("class", "net"), err)
	}
	for _, m := range netclassMetrics(nc, &c.descs, c.h.series) {
		ch(m)
	}
	return nil
}

func netPropDesc(name string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "network", name),
		"Network device property: "+name, []string{"device"}, nil)
}

func netclassMetrics(nc sysfs.NetClass, descs *descCache, sc *seriesCache) []prometheus.Metric {
	names := make([]string, 0, len(nc))
	for n := range nc {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]prometheus.Metric, 0, len(names)*(len(netClassInts)+2))
	for _, n := range names {
		i := nc[n]
		up := 0.0
		if i.OperState == "up" {
			up = 1
		}
		out = append(out,
			sc.metric(netUpDesc, prometheus.GaugeValue, up, n),
			sc.metric(netInfoDesc, prometheus.GaugeValue, 1, n, i.Address, i.Broadcast, i.Duplex, i.OperState, i.IfAlias),
		)
		prop := func(name string, v *int64, typ prometheus.ValueType) {
			if v != nil {
				d := descs.get(name, func() *prometheus.Desc { return netPropDesc(name) })
				out = append(out, sc.metric(d, typ, float64(*v), n))
			}
		}
		prop("address_assign_type", i.AddrAssignType, prometheus.GaugeValue)
		prop("carrier", i.Carrier, prometheus.GaugeValue)
		prop("carrier_changes_total", i.CarrierChanges, prometheus.CounterValue)
		prop("carrier_up_changes_total", i.CarrierUpCount, prometheus.CounterValue)
		prop("carrier_down_changes_total", i.CarrierDownCount, prometheus.CounterValue)
		prop("device_id", i.DevID, prometheus.GaugeValue)
		prop("dormant", i.Dormant, prometheus.GaugeValue)
		prop("flags", i.Flags, prometheus.GaugeValue)
		prop("iface_id", i.IfIndex, prometheus.GaugeValue)
		prop("iface_link", i.IfLink, prometheus.GaugeValue)
		prop("iface_link_mode", i.LinkMode, prometheus.GaugeValue)
		prop("mtu_bytes", i.MTU, prometheus.GaugeValue)
		prop("name_assign_type", i.NameAssignType, prometheus.GaugeValue)
		prop("net_dev_group", i.NetDevGroup, prometheus.GaugeValue)
		if i.Speed != nil {
			// Like node_exporter, an unknown speed (-1) is exported as is.
			speedBytes := *i.Speed * 1000 * 1000 / 8
			prop("speed_bytes", &speedBytes, prometheus.GaugeValue)
		}
		prop("transmit_queue_length", i.TxQueueLen, prometheus.GaugeValue)
		prop("protocol_type", i.Type, prometheus.GaugeValue)
	}
	return out
}

// netClassInts maps the numeric attribute files to their field, flags
// first: the attributes after it that only a running interface has are
// not read for one that is down (netClassRunning).
var netClassInts = [...]struct {
	file string
	ptr  func(*sysfs.NetClassIface) **int64
	// running: the kernel answers only while the interface runs
	// (EINVAL otherwise).
	running bool
}{
	{"flags", func(i *sysfs.NetClassIface) **int64 { return &i.Flags }, false},
	{"addr_assign_type", func(i *sysfs.NetClassIface) **int64 { return &i.AddrAssignType }, false},
	{"carrier", func(i *sysfs.NetClassIface) **int64 { return &i.Carrier }, true},
	{"carrier_changes", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierChanges }, false},
	{"carrier_up_count", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierUpCount }, false},
	{"carrier_down_count", func(i *sysfs.NetClassIface) **int64 { return &i.CarrierDownCount }, false},
	{"dev_id", func(i *sysfs.NetClassIface) **int64 { return &i.DevID }, false},
	{"dormant", func(i *sysfs.NetClassIface) **int64 { return &i.Dormant }, true},
	{"ifindex", func(i *sysfs.NetClassIface) **int64 { return &i.IfIndex }, false},
	{"iflink", func(i *sysfs.NetClassIface) **int64 { return &i.IfLink }, false},
	{"link_mode", func(i *sysfs.NetClassIface) **int64 { return &i.LinkMode }, false},
	{"mtu", func(i *sysfs.NetClassIface) **int64 { return &i.MTU }, false},
	{"name_assign_type", func(i *sysfs.NetClassIface) **int64 { return &i.NameAssignType }, false},
	{"netdev_group", func(i *sysfs.NetClassIface) **int64 { return &i.NetDevGroup }, false},
	{"speed", func(i *sysfs.NetClassIface) **int64 { return &i.Speed }, true},
	{"tx_queue_len", func(i *sysfs.NetClassIface) **int64 { return &i.TxQueueLen }, false},
	{"type", func(i *sysfs.NetClassIface) **int64 { return &i.Type }, false},
}

// netClassRunning tells from an interface's flags whether it runs (is
// up, IFF_UP): the kernel answers carrier, dormant, speed and duplex
// only then, and EINVAL otherwise, so for an interface that is down they
// are not read at all (a read each, four of the twenty-two of such an
// interface). Unknown flags read everything.
func netClassRunning(flags *int64) bool {
	return flags == nil || *flags&unix.IFF_UP != 0
}

// readNetClass reads /sys/class/net into the same structure as
// procfs' sysfs.FS.NetClass. This collector reads about twenty files per
// interface every scrape: it reads them through files (kept open between
// scrapes, openFiles), each under the inode of the interface's entry in
// the directory, so an interface that takes another's name (a rename, or
// one removed and another made) is read through files of its own.
// Attributes the device does not support (EINVAL, as speed on virtual
// links) are left nil, as procfs does; an interface none of whose
// attributes can be read (removed while it was read) is left out.
// addr_len, which procfs reads too, is not: no metric shows it.
func readNetClass(dir string, files *openFiles) (sysfs.NetClass, error) {
	entries, err := readDirInodes(dir)
	if err != nil {
		return nil, err
	}
	nc := make(sysfs.NetClass, len(entries))
	var buf [256]byte
	for _, e := range entries {
		if e.typ == unix.DT_REG {
			continue // bonding_masters
		}
		i := sysfs.NetClassIface{Name: e.name}
		found := false
		read := func(name string) ([]byte, bool) {
			b, err := files.read(dir+"/"+e.name+"/"+name, e.ino, buf[:], true)
			if err != nil {
				return nil, false
			}
			found = true
			return bytes.TrimSpace(b), true
		}
		// The interface's numbers share one array: one allocation,
		// not one per attribute.
		var nums [len(netClassInts)]int64
		for k, a := range netClassInts {
			if a.running && !netClassRunning(i.Flags) {
				continue
			}
			if b, ok := read(a.file); ok {
				if v, err := strconv.ParseInt(string(b), 0, 64); err == nil {
					nums[k] = v
					*a.ptr(&i) = &nums[k]
				}
			}
		}
		str := func(name string) string {
			b, _ := read(name)
			return string(b)
		}
		i.Address = str("address")
		i.Broadcast = str("broadcast")
		if netClassRunning(i.Flags) {
			i.Duplex = str("duplex")
		}
		i.IfAlias = str("ifalias")
		i.OperState = str("operstate")
		if found {
			nc[i.Name] = i
		}
	}
	return nc, nil
}

// operStates names IFLA_OPERSTATE's values (RFC 2863) as sysfs'
// operstate does.
var operStates = [...]string{"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"}

// readNetClassLinks is readNetClass with the link dump: the interfaces
// are the dump's, and so are the attributes the kernel copies from the
// same fields of the device as sysfs shows them (addresses, alias, MTU,
// queue length, group, link mode, operational state, carrier and its
// counts, indexes, type). The seven it does not carry as sysfs shows
// them are read from sysfs, each through a file kept open under the
// interface's index (openFiles: a name that passes to another interface
// names another file): flags (the dump's ifi_flags mix in the running
// and promiscuous states), addr_assign_type, dev_id, name_assign_type,
// and, of a running interface, dormant, speed and duplex.
func readNetClassLinks(dir string, files *openFiles, links []netLink) sysfs.NetClass {
	nc := make(sysfs.NetClass, len(links))
	var buf [256]byte
	for k := range links {
		l := &links[k]
		i := sysfs.NetClassIface{Name: l.name}
		read := func(name string) ([]byte, bool) {
			b, err := files.read(dir+"/"+l.name+"/"+name, uint64(uint32(l.index)), buf[:], true)
			return bytes.TrimSpace(b), err == nil
		}
		// The interface's numbers share one array, as in readNetClass.
		var nums [len(netClassInts)]int64
		n := 0
		num := func(v int64) *int64 {
			nums[n] = v
			n++
			return &nums[n-1]
		}
		sysNum := func(name string) *int64 {
			if b, ok := read(name); ok {
				if v, err := strconv.ParseInt(string(b), 0, 64); err == nil {
					return num(v)
				}
			}
			return nil
		}
		linkNum := func(has linkHas, v uint32) *int64 {
			if l.has&has == 0 {
				return nil
			}
			return num(int64(v))
		}
		i.Flags = sysNum("flags")
		running := netClassRunning(i.Flags)
		i.AddrAssignType = sysNum("addr_assign_type")
		i.DevID = sysNum("dev_id")
		i.NameAssignType = sysNum("name_assign_type")
		if running {
			i.Dormant = sysNum("dormant")
			i.Speed = sysNum("speed")
			if b, ok := read("duplex"); ok {
				i.Duplex = string(b)
			}
			i.Carrier = linkNum(hasCarrier, uint32(l.carrier))
		}
		i.CarrierChanges = linkNum(hasCarrierChanges, l.carrierChanges)
		i.CarrierUpCount = linkNum(hasCarrierUp, l.carrierUp)
		i.CarrierDownCount = linkNum(hasCarrierDown, l.carrierDwn)
		i.IfIndex = num(int64(l.index))
		if l.has&hasIflink != 0 {
			i.IfLink = num(int64(l.iflink))
		} else {
			i.IfLink = num(int64(l.index)) // the kernel leaves IFLA_LINK out where they are equal
		}
		i.LinkMode = linkNum(hasLinkmode, uint32(l.linkmode))
		i.MTU = linkNum(hasMTU, l.mtu)
		i.NetDevGroup = linkNum(hasGroup, l.group)
		i.TxQueueLen = linkNum(hasTxqlen, l.txqlen)
		i.Type = num(int64(l.typ))
		i.Address, i.Broadcast, i.IfAlias = l.address, l.broadcast, l.alias
		if l.has&hasOperstate != 0 && int(l.operstate) < len(operStates) {
			i.OperState = operStates[l.operstate]
		}
		nc[i.Name] = i
	}
	return nc
}

// dirEntry is an entry of a directory as getdents(2) gives it.
type dirEntry struct {
	name string
	ino  uint64
	typ  uint8 // unix.DT_*
}

// readDirInodes lists dir with the inode number of each entry, which
// os.ReadDir reads but does not give out. Written here, not taken from a
// library: golang.org/x/sys/unix.ParseDirent gives names only.
func readDirInodes(dir string) ([]dirEntry, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var (
		out []dirEntry
		buf [8192]byte
	)
	for {
		n, err := unix.Getdents(fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		out = parseDirents(buf[:n], out)
	}
}

// parseDirents appends the entries of b, struct linux_dirent64 records
// (d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated),
// to out, leaving out "." and "..". A record that does not fit ends the
// parse.
func parseDirents(b []byte, out []dirEntry) []dirEntry {
	const head = 19 // the fixed fields
	for len(b) >= head {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < head || reclen > len(b) {
			break
		}
		rec := b[:reclen]
		b = b[reclen:]
		name := rec[head:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		out = append(out, dirEntry{name: string(name), ino: binary.NativeEndian.Uint64(rec[0:8]), typ: rec[18]})
	}
	return out
}
