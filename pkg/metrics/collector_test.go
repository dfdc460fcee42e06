package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/internal/testenv"
)

func TestCollectorsOnFixtures(t *testing.T) {
	tests := []struct {
		collector string
		want      []string // exposition lines that must be present
		absent    []string // substrings that must not be present
	}{
		{"cpu", []string{
			`node_cpu_seconds_total{cpu="0",mode="user"} 53.19`,
			`node_cpu_seconds_total{cpu="1",mode="idle"} 359.19`,
			`node_cpu_seconds_total{cpu="1",mode="iowait"} 3.04`,
			`node_cpu_guest_seconds_total{cpu="0",mode="user"} 0`,
		}, []string{`cpu="-1"`}},
		{"stat", []string{
			`node_context_switches_total 1.163466e+06`,
			`node_boot_time_seconds 1.795633586e+09`,
			`node_forks_total 23443`,
			`node_procs_running 1`,
		}, nil},
		{"loadavg", []string{`node_load1 0.5`, `node_load5 0.69`, `node_load15 0.34`}, nil},
		{"meminfo", []string{
			`node_memory_MemTotal_bytes 2.5276510208e+10`,
			`node_memory_MemAvailable_bytes 2.479577088e+10`,
			`node_memory_Active_anon_bytes 2.039808e+06`,
			`node_memory_HugePages_Total 0`,
			"# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.",
			"# TYPE node_memory_MemTotal_bytes gauge",
		}, nil},
		{"vmstat", []string{`node_vmstat_pgfault 1.1831745e+07`, `node_vmstat_oom_kill 0`, "# TYPE node_vmstat_pgfault untyped"},
			[]string{"nr_free_pages"}},
		{"filefd", []string{`node_filefd_allocated 921`, `node_filefd_maximum 2.466177e+06`}, nil},
		{"selinux", []string{`node_selinux_enabled 0`}, []string{"node_selinux_current_mode"}},
		{"pressure", []string{
			`node_pressure_io_waiting_seconds_total 3.19855`,
			`node_pressure_io_stalled_seconds_total 2.526259`,
		}, nil},
		{"sockstat", []string{
			`node_sockstat_sockets_used 42`,
			`node_sockstat_TCP_alloc 2`,
			`node_sockstat_TCP_mem_bytes 0`,
			`node_sockstat_FRAG_memory 0`,
			"# HELP node_sockstat_TCP_inuse Number of TCP sockets in state inuse.",
		}, nil},
		{"netdev", []string{
			`node_network_receive_bytes_total{device="eth0"} 4.6597067e+08`,
			`node_network_transmit_packets_total{device="eth0"} 14479`,
			"# HELP node_network_receive_bytes_total Network device statistic receive_bytes.",
			// From /sys/class/net/eth0/statistics: /proc/net/dev lacks it.
			`node_network_receive_nohandler_total{device="eth0"} 7`,
		}, nil},
		{"netclass", []string{
			`node_network_info{address="02:fc:00:00:00:01",broadcast="ff:ff:ff:ff:ff:ff",device="eth0",duplex="unknown",ifalias="",operstate="up"} 1`,
			`node_network_up{device="eth0"} 1`,
			`node_network_up{device="lo"} 0`,
			`node_network_mtu_bytes{device="eth0"} 1400`,
			`node_network_speed_bytes{device="eth0"} -125000`,
		}, nil},
		{"diskstats", []string{
			`node_disk_read_bytes_total{device="vda"} 1.245021184e+09`,
			`node_disk_reads_completed_total{device="vda"} 48864`,
			`node_disk_io_time_seconds_total{device="vda"} 6.912`,
			`node_disk_flush_requests_total{device="vda"} 2220`,
			`node_disk_info{device="vda",major="254",minor="0",model="hostd-disk",path="virtio-pci-0000:00:05.0",revision="1.0",serial="HD123",wwn="0x5000c500a1b2c3d4"} 1`,
			`node_disk_info{device="zram0",major="253",minor="0",model="",path="",revision="",serial="",wwn=""} 1`,
		}, []string{`device="vda1"`, `device="loop0"`}},
		{"thermal_zone", []string{`node_thermal_zone_temp{type="acpitz",zone="0"} 47.5`}, nil},
		{"hwmon", []string{
			`node_hwmon_temp_celsius{chip="coretemp",sensor="temp1"} 52`,
			`node_hwmon_temp_crit_celsius{chip="coretemp",sensor="temp1"} 100`,
			`node_hwmon_chip_names{chip="coretemp",chip_name="coretemp"} 1`,
		}, nil},
		{"time", []string{`node_time_seconds 1.795608e+09`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.collector, func(t *testing.T) {
			out := exposition(t, newFixtureCollector(t, nil, tt.collector))
			for _, w := range tt.want {
				if !strings.Contains(out, w+"\n") {
					t.Errorf("missing line %q in:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("unexpected %q in output", a)
				}
			}
			if !strings.Contains(out, `node_scrape_collector_success{collector="`+tt.collector+`"} 1`) {
				t.Errorf("collector %s did not report success:\n%s", tt.collector, out)
			}
		})
	}
}

func TestUnameMetric(t *testing.T) {
	var u unix.Utsname
	copy(u.Sysname[:], "Linux")
	copy(u.Release[:], "6.1.0")
	copy(u.Version[:], "#1 SMP")
	copy(u.Machine[:], "x86_64")
	copy(u.Nodename[:], "box")
	copy(u.Domainname[:], "(none)")
	h, err := newHost(fixtureHostOptions(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.uname = func() (unix.Utsname, error) { return u, nil }
	n, err := newNodeCollector(h, []string{"uname"}, h.logger)
	if err != nil {
		t.Fatal(err)
	}
	want := `node_uname_info{domainname="(none)",machine="x86_64",nodename="box",release="6.1.0",sysname="Linux",version="#1 SMP"} 1`
	if out := exposition(t, n); !strings.Contains(out, want) {
		t.Errorf("missing %q in:\n%s", want, out)
	}
}

func keepAll([]byte) bool                       { return true }
func ignore(name []byte, v float64)             {}
func ignoreMem(name []byte, kB bool, v float64) {}

func TestParseBadInput(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
		parse                func(string) error
	}{
		{"meminfo no colon", "MemTotal 12 kB\n", "line 1: malformed", func(s string) error { return parseMeminfo([]byte(s), ignoreMem) }},
		{"meminfo bad value", "MemTotal: twelve kB\n", "line 1: value of MemTotal:", func(s string) error { return parseMeminfo([]byte(s), ignoreMem) }},
		{"meminfo bad unit", "MemFree: 1\nMemTotal: 12 MB\n", "line 2: unknown unit", func(s string) error { return parseMeminfo([]byte(s), ignoreMem) }},
		{"vmstat extra field", "pgfault 1 2\n", "line 1: malformed", func(s string) error { return parseVmstat([]byte(s), keepAll, ignore) }},
		{"vmstat bad value", "pgfault x\n", "line 1: value of pgfault", func(s string) error { return parseVmstat([]byte(s), keepAll, ignore) }},
		{"file-nr short", "12 0\n", "want 3 fields", func(s string) error { _, _, err := parseFileNr(s); return err }},
		{"file-nr bad max", "12 0 x\n", "maximum", func(s string) error { _, _, err := parseFileNr(s); return err }},
		{"stat bad cpu time", "cpu0 1 2 x 4\n", "cpu0:", func(s string) error { return parseProcStat([]byte(s), &procStat{}) }},
		{"stat bad ctxt", "ctxt -1\n", "ctxt:", func(s string) error { return parseProcStat([]byte(s), &procStat{}) }},
		{"udp short line", "header\n1: a b 07\n", "short line", func(s string) error { _, _, err := parseUDPQueues([]byte(s)); return err }},
		{"udp bad queue", "header\n1: a b 07 0000000x:00000000 00\n", "bad queue column", func(s string) error { _, _, err := parseUDPQueues([]byte(s)); return err }},
		{"udp no colon", "header\n1: a b 07 00000000 00\n", "bad queue column", func(s string) error { _, _, err := parseUDPQueues([]byte(s)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseMeminfo(f *testing.F) {
	seed, err := os.ReadFile("testdata/proc/meminfo")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("Active(anon): 1 kB\nHugePages_Total: 0\n"))
	f.Add([]byte("X:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fields []string
		var values []float64
		if err := parseMeminfo(b, func(field []byte, kB bool, v float64) {
			fields = append(fields, meminfoName(string(field), kB))
			values = append(values, v)
		}); err != nil {
			return
		}
		for i, name := range fields {
			// Every name must make a valid metric name.
			d := prometheus.NewDesc("node_memory_"+name, "h", nil, nil)
			if _, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, values[i]); err != nil && !strings.Contains(err.Error(), "is not a valid metric name") {
				t.Fatalf("field %q: %v", name, err)
			}
		}
	})
}

// TestCollectorErrorLoggedOnce breaks a collector's source and checks that
// only its metrics go, and that the failure is logged once across scrapes
// and the recovery once.
func TestCollectorErrorLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/proc")); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opts := fixtureHostOptions()
	opts.ProcPath = dir
	n, err := NewNodeCollector(opts, []string{"loadavg", "filefd"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys", "fs", "file-nr"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		out := exposition(t, n)
		if !strings.Contains(out, "node_load1 0.5\n") {
			t.Fatalf("scrape %d: loadavg metrics missing while only filefd is broken:\n%s", i, out)
		}
		if strings.Contains(out, "node_filefd_allocated") {
			t.Fatalf("scrape %d: filefd metrics present although its source is broken", i)
		}
		if !strings.Contains(out, `node_scrape_collector_success{collector="filefd"} 0`) {
			t.Fatalf("scrape %d: filefd not reported as failing", i)
		}
	}
	if got := strings.Count(logs.String(), "collector failed"); got != 1 {
		t.Fatalf("failure logged %d times over 3 scrapes, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "collector=filefd") || !strings.Contains(logs.String(), "file-nr") {
		t.Fatalf("log line does not name the collector and file:\n%s", logs.String())
	}
	if f := n.Failing(); f["filefd"] == "" {
		t.Fatalf("Failing() = %v, want filefd", f)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys", "fs", "file-nr"), []byte("5 0 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := exposition(t, n)
	exposition(t, n)
	if !strings.Contains(out, "node_filefd_allocated 5\n") {
		t.Fatalf("filefd did not recover:\n%s", out)
	}
	if got := strings.Count(logs.String(), "collector recovered"); got != 1 {
		t.Fatalf("recovery logged %d times, want 1:\n%s", got, logs.String())
	}
}

func TestUnknownCollector(t *testing.T) {
	_, err := NewNodeCollector(fixtureHostOptions(), []string{"cpu", "gpu"}, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown collector "gpu"`) {
		t.Fatalf("got %v, want unknown collector error", err)
	}
}

// writeMountinfo writes a PID 1 mountinfo naming the given mount points.
func writeMountinfo(t *testing.T, procDir string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(procDir, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procDir, "1", "mountinfo"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFilesystem(t *testing.T) {
	proc := t.TempDir()
	data := t.TempDir()
	writeMountinfo(t, proc,
		"20 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
		"21 20 0:5 / /proc rw,nosuid - proc proc rw",
		"22 20 0:6 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
		"23 20 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw",
		"24 20 254:0 / "+data+" ro,relatime - ext4 /dev/vdb ro",
	)
	opts := fixtureHostOptions()
	opts.ProcPath = proc
	n, err := NewNodeCollector(opts, []string{"filesystem"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := exposition(t, n)
	var st unix.Statfs_t
	if err := unix.Statfs(data, &st); err != nil {
		t.Fatal(err)
	}
	labels := `{device="/dev/vdb",fstype="ext4",mountpoint="` + data + `"}`
	for _, want := range []string{
		"node_filesystem_readonly" + labels + " 1",
		"node_filesystem_device_error" + labels + " 0",
		`node_filesystem_readonly{device="/dev/vda",fstype="ext4",mountpoint="/"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "node_filesystem_size_bytes"+labels+" ") {
		t.Errorf("no size for %s", data)
	}
	for _, bad := range []string{`mountpoint="/proc"`, `fstype="cgroup2"`, `fstype="overlay"`} {
		if strings.Contains(out, bad) {
			t.Errorf("pseudo/overlay mount %s reported", bad)
		}
	}

	// The parsed mount table is kept between scrapes; a change to the
	// file shows at the next one.
	writeMountinfo(t, proc, "20 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw")
	out = exposition(t, n)
	if strings.Contains(out, labels) {
		t.Errorf("unmounted %s still reported:\n%s", data, out)
	}
	if !strings.Contains(out, `node_filesystem_readonly{device="/dev/vda",fstype="ext4",mountpoint="/"} 0`+"\n") {
		t.Errorf("/ missing after the mount table changed:\n%s", out)
	}
}

// TestFilesystemStuckMount has one mount whose statfs never answers (a
// dead NFS server), and a local disk mounted below it, whose path walk
// waits on the server too: the scrape still finishes within the mount
// timeout, both mounts are reported as device errors and not asked again
// while stuck.
func TestFilesystemStuckMount(t *testing.T) {
	proc := t.TempDir()
	writeMountinfo(t, proc,
		"20 1 254:0 / / rw - ext4 /dev/vda rw",
		"30 20 0:50 / /srv/nfs rw - nfs4 server:/export rw",
		"40 30 254:16 / /srv/nfs/disk rw - ext4 /dev/vdb rw",
	)
	opts := fixtureHostOptions()
	opts.ProcPath = proc
	opts.MountTimeout = time.Second // the healthy mount must answer within it even on a busy machine
	h, err := newHost(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var nfsCalls atomic.Int32
	var diskCalls atomic.Int32
	h.statfs = func(path string, buf *unix.Statfs_t) error {
		switch path {
		case "/srv/nfs":
			nfsCalls.Add(1)
		case "/srv/nfs/disk":
			diskCalls.Add(1)
		default:
			return unix.Statfs(path, buf)
		}
		<-release
		return errors.New("stale file handle")
	}
	n, err := newNodeCollector(h, []string{"filesystem"}, h.logger)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		out := exposition(t, n)
		for _, want := range []string{
			`node_filesystem_device_error{device="server:/export",fstype="nfs4",mountpoint="/srv/nfs"} 1`,
			`node_filesystem_device_error{device="/dev/vdb",fstype="ext4",mountpoint="/srv/nfs/disk"} 1`,
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("scrape %d: stuck mount not reported as error (%s):\n%s", i, want, out)
			}
		}
		if !strings.Contains(out, `node_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}`) {
			t.Fatalf("scrape %d: healthy mount missing", i)
		}
	}
	if got, disk := nfsCalls.Load(), diskCalls.Load(); got != 1 || disk != 1 {
		t.Fatalf("stuck mounts were asked %d and %d times, want 1", got, disk)
	}
	close(release)
	testenv.WaitFor(t, 5*time.Second, func() error {
		exposition(t, n)
		if nfsCalls.Load() < 2 {
			return errors.New("mount not retried after it answered")
		}
		return nil
	})
}

// TestPromtoolCheckMetrics runs promtool's linter over the collectors'
// output on the fixtures and on this host.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	host, err := NewNodeCollector(HostOptions{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]prometheus.Collector{
		"fixtures": newFixtureCollector(t, nil),
		"host":     host,
	} {
		t.Run(name, func(t *testing.T) {
			out := exposition(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
			cmd.Stdin = strings.NewReader(out)
			res, err := cmd.CombinedOutput()
			if err == nil {
				return
			}
			// Exit status 3 means lint findings only. node_exporter's
			// node_memory_* and node_netstat_* names keep the kernel's
			// CamelCase field names, which dashboards depend on; every
			// other finding fails.
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("promtool check metrics: %v\n%s", err, res)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(res)), "\n") {
				if !kernelNameFinding(line) {
					t.Errorf("promtool: %s", line)
				}
			}
		})
	}
}

// TestReadNetClassMatchesProcfs checks hostd's syscall-level reader of
// /sys/class/net against procfs' on the fixtures and on this host.
// TestParseProcStatMatchesProcfs compares hostd's /proc/stat parser with
// procfs' on the fixture, on a kernel without the guest columns, and
// (structure only, the counters move between reads) on this host.
func TestParseProcStatMatchesProcfs(t *testing.T) {
	oldKernel := t.TempDir()
	if err := os.WriteFile(filepath.Join(oldKernel, "stat"), []byte("cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 7\nctxt 8\nbtime 9\nprocesses 10\nprocs_running 1\nprocs_blocked 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"testdata/proc", oldKernel, "/proc"} {
		t.Run(root, func(t *testing.T) {
			fs, err := procfs.NewFS(root)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fs.Stat()
			if err != nil {
				t.Fatal(err)
			}
			r := statReader{path: filepath.Join(root, "stat")}
			for range 2 { // the second read reuses the first one's buffers
				var got procStat
				if err := r.read(func(st *procStat) { got = *st; got.cpus = slices.Clone(st.cpus) }); err != nil {
					t.Fatal(err)
				}
				if len(got.cpus) != len(want.CPU) {
					t.Fatalf("%d CPUs, procfs has %d", len(got.cpus), len(want.CPU))
				}
				for _, c := range got.cpus {
					id, err := strconv.ParseInt(c.id, 10, 64)
					if err != nil {
						t.Fatalf("cpu id %q: %v", c.id, err)
					}
					w, ok := want.CPU[id]
					if !ok {
						t.Fatalf("cpu%s not in procfs' parse", c.id)
					}
					if root == "/proc" {
						continue
					}
					have := procfs.CPUStat{User: c.user, Nice: c.nice, System: c.system, Idle: c.idle, Iowait: c.iowait,
						IRQ: c.irq, SoftIRQ: c.softirq, Steal: c.steal, Guest: c.guest, GuestNice: c.guestNice}
					if have != w {
						t.Errorf("cpu%s = %+v, procfs %+v", c.id, have, w)
					}
				}
				if got.btime != want.BootTime {
					t.Errorf("btime %d, procfs %d", got.btime, want.BootTime)
				}
				if root == "/proc" {
					continue
				}
				if got.intr != want.IRQTotal || got.ctxt != want.ContextSwitches || got.processes != want.ProcessCreated ||
					got.running != want.ProcessesRunning || got.blocked != want.ProcessesBlocked {
					t.Errorf("counters %+v differ from procfs %+v", got, want)
				}
			}
		})
	}
}

// withoutUnread is procfs' reading of an interface without the fields
// readNetClass does not read, as no metric shows them.
func withoutUnread(i sysfs.NetClassIface) sysfs.NetClassIface {
	i.AddrLen, i.PhysPortID, i.PhysPortName, i.PhysSwitchID = nil, "", "", ""
	return i
}

func TestReadNetClassMatchesProcfs(t *testing.T) {
	for _, root := range []string{"testdata/sys", "/sys"} {
		t.Run(root, func(t *testing.T) {
			fs, err := sysfs.NewFS(root)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fs.NetClass()
			if err != nil {
				t.Fatal(err)
			}
			got, err := readNetClass(filepath.Join(root, "class", "net"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for n, i := range want {
				want[n] = withoutUnread(i)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("readNetClass differs from procfs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestWalksInCore: a mount's statfs runs in the scrape's goroutine only
// when its filesystem and every mount its path goes through answer from
// memory.
func TestWalksInCore(t *testing.T) {
	infos := []*procfs.MountInfo{
		{MountPoint: "/", FSType: "ext4"},
		{MountPoint: "/home", FSType: "xfs"},
		{MountPoint: "/srv/nfs", FSType: "nfs4"},
		{MountPoint: "/srv/nfs/disk", FSType: "ext4"},
		{MountPoint: "/srv/nfsdisk", FSType: "ext4"},
		{MountPoint: "/mnt/fuse", FSType: "fuse.sshfs"},
		{MountPoint: "/tmp", FSType: "tmpfs"},
	}
	for mp, want := range map[string]bool{
		"/": true, "/home": true, "/tmp": true, "/srv/nfsdisk": true,
		"/srv/nfs": false, "/srv/nfs/disk": false, "/mnt/fuse": false,
	} {
		if got := walksInCore(infos, mp); got != want {
			t.Errorf("%s: %v, want %v", mp, got, want)
		}
	}
	overlayRoot := []*procfs.MountInfo{{MountPoint: "/", FSType: "overlay"}, {MountPoint: "/data", FSType: "ext4"}}
	if walksInCore(overlayRoot, "/data") {
		t.Error("/data below an overlay root: in core")
	}
}
