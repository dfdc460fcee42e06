package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/common/model"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: soakmon sample ... | soakmon report ...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "sample":
		err = sample(ctx, os.Args[2:])
	case "report":
		var failed bool
		failed, err = report(os.Args[2:], os.Stdout)
		if err == nil && failed {
			os.Exit(1)
		}
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakmon:", err)
		os.Exit(1)
	}
}

// Sample is one line of the sample file.
type Sample struct {
	T float64 `json:"t"` // Unix seconds
	// Ready is /readyz's status code, 0 when the request failed.
	Ready      int    `json:"ready"`
	ReadyBody  string `json:"ready_body,omitempty"`
	Goroutines int    `json:"goroutines"` // go_goroutines, -1 when the query failed
	FDs        int    `json:"fds"`        // entries of /proc/PID/fd
	// Hostd is hostd's own process.
	Hostd Proc `json:"hostd"`
	// Go memory figures stored by hostd's metrics service, bytes.
	HeapInuse    float64 `json:"heap_inuse"`
	HeapIdle     float64 `json:"heap_idle"`
	HeapReleased float64 `json:"heap_released"`
	StackInuse   float64 `json:"stack_inuse"`
	GoSys        float64 `json:"go_sys"`
	// Daemons are the replaced daemons by name.
	Daemons map[string]Proc `json:"daemons"`
	// Transient is the resident set (KiB) of the transient replaced
	// processes running at that moment (restic, docker system prune).
	Transient int64 `json:"transient_rss"`
}

// Proc is one process's figures; zero when it was gone.
type Proc struct {
	RSS int64 `json:"rss"` // VmRSS, KiB
	// HWM is VmHWM, KiB: the peak resident set since the sample before
	// (the sampler resets it after reading; see resetPeak).
	HWM  int64   `json:"hwm"`
	Anon int64   `json:"anon"` // RssAnon, KiB
	File int64   `json:"file"` // RssFile, KiB
	CPU  float64 `json:"cpu"`  // user+system seconds so far
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// clkTck is the kernel's USER_HZ, 100 on every Linux architecture Go
// supports (sysconf(_SC_CLK_TCK) is not reachable without cgo).
const clkTck = 100

func sample(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	out := fs.String("out", "", "JSON lines file to append to")
	until := fs.Float64("until", 0, "stop at this Unix time")
	interval := fs.Duration("interval", 2*time.Second, "time between samples")
	pid := fs.Int("hostd", 0, "hostd's pid")
	addr := fs.String("http", "", "hostd's HTTP listener host:port")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each request to hostd")
	transientDir := fs.String("transient-dir", "", "directory of NAME.pid files of transient process trees")
	var daemons multiFlag
	fs.Var(&daemons, "daemon", "NAME=PID of a replaced daemon (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *until == 0 || *pid == 0 || *addr == "" {
		return errors.New("sample needs -out, -until, -hostd and -http")
	}
	dpids := map[string]int{}
	for _, d := range daemons {
		name, p, ok := strings.Cut(d, "=")
		n, err := strconv.Atoi(p)
		if !ok || err != nil {
			return fmt.Errorf("bad -daemon %q: want NAME=PID", d)
		}
		dpids[name] = n
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	client := &http.Client{Timeout: *timeout}
	enc := json.NewEncoder(f)
	end := time.Unix(0, int64(*until*1e9))
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	// Start-up peaks are not the soak's: every peak counts from here.
	resetPeak(*pid)
	for _, p := range dpids {
		resetPeak(p)
	}
	for {
		s := Sample{T: float64(time.Now().UnixNano()) / 1e9, Daemons: map[string]Proc{}}
		s.Ready, s.ReadyBody = readyz(ctx, client, *addr)
		s.Goroutines = -1
		if m, err := scrape(ctx, client, *addr); err == nil {
			s.Goroutines = int(m["go_goroutines"])
			s.HeapInuse, s.HeapIdle, s.HeapReleased = m["go_memstats_heap_inuse_bytes"], m["go_memstats_heap_idle_bytes"], m["go_memstats_heap_released_bytes"]
			s.StackInuse, s.GoSys = m["go_memstats_stack_inuse_bytes"], m["go_memstats_sys_bytes"]
		}
		s.FDs = countFDs(*pid)
		s.Hostd = readProc(*pid)
		resetPeak(*pid)
		for name, p := range dpids {
			s.Daemons[name] = readProc(p)
			resetPeak(p)
		}
		if *transientDir != "" {
			s.Transient = transientRSS(*transientDir)
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		if time.Now().After(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// readyz returns /readyz's status code (0 when the request failed) and, if
// not 200, the start of its body or error.
func readyz(ctx context.Context, c *http.Client, addr string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode == http.StatusOK {
		return 200, ""
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// runtimeQuery selects hostd's own Go runtime figures among the series
// its metrics service stores (job "hostd", collected every
// metrics.interval).
const runtimeQuery = `{job="hostd",__name__=~"go_goroutines|go_memstats_(heap_inuse|heap_idle|heap_released|stack_inuse|sys)_bytes"}`

// scrape reads hostd's goroutines and Go memory figures from its metrics
// service's query API: the values it stored at its last collection.
//
// The soak observes hostd without adding to its work. Reading /metrics
// instead would run every node collector and encode every family at
// each sample, 7 times as often as Prometheus scrapes node_exporter on
// the replaced side, and hostd's CPU and memory would carry the
// observer's load.
func scrape(ctx context.Context, c *http.Client, addr string) (map[string]float64, error) {
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(runtimeQuery)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/query: %s", resp.Status)
	}
	var body struct {
		Data struct {
			Result model.Vector `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode /api/v1/query: %w", err)
	}
	m := map[string]float64{}
	for _, s := range body.Data.Result {
		m[string(s.Metric[model.MetricNameLabel])] = float64(s.Value)
	}
	if _, ok := m["go_goroutines"]; !ok {
		return nil, errors.New("no go_goroutines stored yet")
	}
	return m, nil
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// readProc reads /proc/PID/status and stat; zero when the process is gone.
func readProc(pid int) Proc {
	var p Proc
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			p.RSS = n
		case "VmHWM":
			p.HWM = n
		case "RssAnon":
			p.Anon = n
		case "RssFile":
			p.File = n
		}
	}
	if f := statFields(pid); len(f) > 13 {
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		p.CPU = (u + s) / clkTck
	}
	return p
}

// resetPeak resets the process's VmHWM to its current resident set
// (clear_refs 5, Linux 4.0), so that the next reading is the peak between
// two samples: a backup job of a quarter second between two samples is
// seen. It changes nothing else in the process.
func resetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// statFields returns /proc/PID/stat's fields after the command name, so
// that index 0 is field 3 (state), index 1 ppid, 11 utime, 12 stime.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// transientRSS sums VmRSS over the process trees rooted at the pids
// written in dir/*.pid.
func transientRSS(dir string) int64 {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	if len(files) == 0 {
		return 0
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], pid)
		}
	}
	var sum int64
	seen := map[int]bool{}
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		sum += readProc(pid).RSS
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			walk(pid)
		}
	}
	return sum
}

// Transient is one kind of transient replaced process (restic runs,
// docker system prune runs): lines of "START" followed by
// /usr/bin/time -f "%M %U %S %e" (START is the run's Unix start time).
type Transient struct {
	Name     string
	Runs     int
	PeakKiB  int64
	CPU      float64
	WallMean float64
	Spans    []Span
}

// Span is one transient run: when it ran and its peak RSS.
type Span struct {
	Start, End float64
	PeakKiB    int64
}

func readTransient(name, path string) (Transient, error) {
	t := Transient{Name: name}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var wall float64
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 5 {
			continue // time's "Command exited with non-zero status" lines
		}
		st, err0 := strconv.ParseFloat(fl[0], 64)
		m, err1 := strconv.ParseInt(fl[1], 10, 64)
		u, err2 := strconv.ParseFloat(fl[2], 64)
		s, err3 := strconv.ParseFloat(fl[3], 64)
		w, err4 := strconv.ParseFloat(fl[4], 64)
		if err0 != nil || err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		t.Spans = append(t.Spans, Span{Start: st, End: st + w, PeakKiB: m})
		t.Runs++
		t.PeakKiB = max(t.PeakKiB, m)
		t.CPU += u + s
		wall += w
	}
	if t.Runs > 0 {
		t.WallMean = wall / float64(t.Runs)
	}
	return t, sc.Err()
}
