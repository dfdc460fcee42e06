package metrics

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
)

// userHZ is the unit of /proc/stat's CPU times: the kernel reports them in
// USER_HZ ticks, 100 per second on every architecture (procfs, and so
// node_exporter, use the same constant).
const userHZ = 100

// procStat is what the cpu and stat collectors use of /proc/stat.
type procStat struct {
	cpus      []cpuTimes // the per-CPU lines, in the file's order
	intr      uint64     // first number of the intr line: all interrupts
	ctxt      uint64
	btime     uint64
	processes uint64
	running   uint64
	blocked   uint64
}

// cpuTimes is one cpuN line, in seconds.
type cpuTimes struct {
	id                                                    string // N, as it appears in the file
	user, nice, system, idle, iowait, irq, softirq, steal float64
	guest, guestNice                                      float64
}

// statReader reads /proc/stat into buffers it keeps, so the cpu and stat
// collectors read it every scrape without allocating: the file's per-IRQ
// and softirq columns, which neither needs, are skipped unparsed.
type statReader struct {
	path  string
	files *openFiles // nil: opened on every read

	mu  sync.Mutex // guards buf and st between concurrent gathers
	buf []byte
	st  procStat
}

// read reads and parses the file and calls fn with the result, which is
// only valid during the call.
func (r *statReader) read(fn func(*procStat)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.buf, err = r.files.readFileReuse(r.path, r.buf); err != nil {
		return fmt.Errorf("read %s: %w", r.path, err)
	}
	if err := parseProcStat(r.buf, &r.st); err != nil {
		return fmt.Errorf("parse %s: %w", r.path, err)
	}
	fn(&r.st)
	return nil
}

// parseProcStat parses the contents of /proc/stat into st, reusing its
// cpus slice. Lines it does not know are ignored, as are missing trailing
// CPU columns of older kernels (they stay 0).
func parseProcStat(b []byte, st *procStat) error {
	last := st.cpus // the previous parse: its CPU labels are reused
	cpus := last[:0]
	*st = procStat{}
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		key, rest := nextField(line)
		switch {
		case len(key) > 3 && string(key[:3]) == "cpu":
			// key is cpuN; the "cpu" line is the sum of all CPUs.
			id := key[3:]
			var t cpuTimes
			if i := len(cpus); i < len(last) && last[i].id == string(id) {
				t.id = last[i].id // not yet overwritten: the same CPU as last time
			} else {
				t.id = string(id)
			}
			for _, p := range []*float64{&t.user, &t.nice, &t.system, &t.idle, &t.iowait, &t.irq, &t.softirq, &t.steal, &t.guest, &t.guestNice} {
				var f []byte
				if f, rest = nextField(rest); f == nil {
					break
				}
				v, err := strconv.ParseUint(string(f), 10, 64)
				if err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				*p = float64(v) / userHZ
			}
			cpus = append(cpus, t)
		default:
			for _, c := range [...]struct {
				name string
				dst  *uint64
			}{{"intr", &st.intr}, {"ctxt", &st.ctxt}, {"btime", &st.btime}, {"processes", &st.processes}, {"procs_running", &st.running}, {"procs_blocked", &st.blocked}} {
				if string(key) == c.name {
					if err := parseStatUint(key, rest, c.dst); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	st.cpus = cpus
	return nil
}

// parseStatUint parses the first number after a /proc/stat key.
func parseStatUint(key, rest []byte, dst *uint64) error {
	f, _ := nextField(rest)
	v, err := strconv.ParseUint(string(f), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	*dst = v
	return nil
}

// nextLine returns the first line of b, without its newline, and what
// follows it.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// nextField returns the first space-separated field of b and what follows
// it; the field is nil when there is none.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}
