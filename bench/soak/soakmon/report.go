package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Growth bounds, checked between the first third of the load after
// warm-up and the last third. They must never trip on a healthy daemon on
// a shared, noisy 2-core machine, yet catch a leak:
//   - goroutines and fds are compared by each window's floor (its lowest
//     sample): a proxied transfer in flight holds about 10 fds and 20
//     goroutines (inbound and outbound sockets, copy loops, REALITY and
//     vision), so samples swing between two levels (32 and 46 fds, 49 and
//     73 goroutines in the runs of docs/soak.md) and a median flips
//     between them; the floor is what hostd holds with nothing in flight,
//     and it moves by one or two (a pooled connection). One leaked
//     goroutine or fd per proxied request, DNS-over-TCP query, Docker or
//     pulse call raises the floor by hundreds within two minutes.
//   - RSS is compared by medians: it rises by 10-20 MiB within each
//     minute (the heap grows to twice its live size before a collection
//     at GOGC 100, and each backup job ends with its memory given back),
//     so two medians of half a minute differ by up to about that much; a
//     few KiB kept per request, or a job's memory kept per run (40 MiB
//     and more here), exceeds 24 MiB within minutes.
const (
	defMaxGoroutines = 25
	defMaxFDs        = 12
	defMaxRSSMiB     = 24
)

func report(args []string, w io.Writer) (failed bool, err error) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	samplesPath := fs.String("samples", "", "sample file written by soakmon sample")
	idleStart := fs.Float64("idle-start", 0, "Unix time the idle window starts (every service ready, no load)")
	loadStart := fs.Float64("load-start", 0, "Unix time the load started")
	loadEnd := fs.Float64("load-end", 0, "Unix time the load stopped")
	warmup := fs.Duration("warmup", 30*time.Second, "load time before the growth baseline")
	maxG := fs.Int("max-goroutines", defMaxGoroutines, "allowed growth of go_goroutines")
	maxFD := fs.Int("max-fds", defMaxFDs, "allowed growth of open fds")
	maxRSS := fs.Float64("max-rss-mib", defMaxRSSMiB, "allowed growth of RSS, MiB")
	scheduled := fs.Int("backups-scheduled", -1, "scheduled backup runs that fell in the soak")
	snapshots := fs.Int("backup-snapshots", -1, "snapshots in hostd's repository")
	succeeded := fs.Int("backups-succeeded", -1, "hostd_backup_runs_total{result=\"success\"}")
	failedRuns := fs.Int("backups-failed", -1, "failed, partial or interrupted runs")
	enforce := fs.Bool("enforce-targets", false, "fail when an RSS ratio target is missed")
	command := fs.String("command", "", "the command line to print with the table")
	var transients multiFlag
	fs.Var(&transients, "transient", "NAME=FILE of /usr/bin/time -f '%M %U %S %e' lines (repeatable)")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	samples, err := readSamples(*samplesPath)
	if err != nil {
		return false, err
	}
	var idle, load, settle []Sample
	for _, s := range samples {
		switch {
		case s.T < *idleStart:
		case s.T < *loadStart:
			idle = append(idle, s)
		case s.T <= *loadEnd:
			load = append(load, s)
		default:
			settle = append(settle, s)
		}
	}
	if len(idle) == 0 || len(load) < 6 {
		return false, fmt.Errorf("too few samples: %d idle, %d under load", len(idle), len(load))
	}
	var ts []Transient
	for _, t := range transients {
		name, path, ok := strings.Cut(t, "=")
		if !ok {
			return false, fmt.Errorf("bad -transient %q", t)
		}
		tr, err := readTransient(name, path)
		if err != nil {
			return false, err
		}
		ts = append(ts, tr)
	}
	var problems []string
	fail := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	names := daemonNames(samples)
	replaced := func(s Sample) int64 { // persistent daemons, KiB
		var n int64
		for _, d := range s.Daemons {
			n += d.RSS
		}
		return n
	}
	mib := func(kib float64) float64 { return kib / 1024 }
	col := func(ss []Sample, f func(Sample) float64) []float64 {
		v := make([]float64, 0, len(ss))
		for _, s := range ss {
			v = append(v, f(s))
		}
		return v
	}
	hostdRSS := func(s Sample) float64 { return float64(s.Hostd.RSS) }
	replRSS := func(s Sample) float64 { return float64(replaced(s)) }
	withTransient := func(s Sample) float64 { return float64(replaced(s) + s.Transient) }

	// A daemon that died would shrink the replaced side and flatter hostd.
	for _, n := range names {
		for _, s := range append(append(idle[:len(idle):len(idle)], load...), settle...) {
			if s.Daemons[n].RSS == 0 {
				fail("replaced daemon %s was gone at %s", n, stamp(s.T))
				break
			}
		}
	}

	// Memory. Each sample's HWM is the process's peak since the sample
	// before, so peaks between samples (a backup job of a quarter second)
	// count. The transient replaced runs (restic, docker system prune)
	// add their own peak (/usr/bin/time) to every interval they overlap,
	// give or take one sample interval: hostd's job and restic start at
	// the same second, and which of the two a sample falls between is
	// chance.
	peakOf := func(p Proc) int64 { return max(p.HWM, p.RSS) }
	transientIn := func(from, to float64) int64 {
		var n int64
		for _, t := range ts {
			for _, sp := range t.Spans {
				if sp.Start <= to && sp.End >= from {
					n += sp.PeakKiB
				}
			}
		}
		return n
	}
	prevT := func(ss []Sample, i int) float64 {
		if i > 0 {
			return ss[i-1].T
		}
		return ss[i].T - 2
	}
	replPeak := func(ss []Sample, i int) float64 {
		var n int64
		for _, d := range ss[i].Daemons {
			n += peakOf(d)
		}
		slack := ss[i].T - prevT(ss, i)
		return float64(n + transientIn(prevT(ss, i)-slack, ss[i].T+slack))
	}
	idleH, idleR := median(col(idle, hostdRSS)), median(col(idle, replRSS))
	meanH, meanR := mean(col(load, hostdRSS)), mean(col(load, withTransient))
	var peakH, peakR, worst, worstAt, worstH, worstR float64
	for i, s := range load {
		h, r := float64(peakOf(s.Hostd)), replPeak(load, i)
		peakH, peakR = max(peakH, h), max(peakR, r)
		if h/r > worst {
			worst, worstAt, worstH, worstR = h/r, s.T, h, r
		}
	}

	fmt.Fprintf(w, "\n== RSS (MiB): hostd with every service on vs the daemons it replaces, same load, same run ==\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tidle median\tload mean\tload peak\t")
	fmt.Fprintf(tw, "hostd\t%.1f\t%.1f\t%.1f\t\n", mib(idleH), mib(meanH), mib(peakH))
	for _, n := range names {
		d := func(s Sample) float64 { return float64(s.Daemons[n].RSS) }
		p := func(s Sample) float64 { return float64(peakOf(s.Daemons[n])) }
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t\n", n, mib(median(col(idle, d))), mib(mean(col(load, d))), mib(maxOf(col(load, p))))
	}
	for _, t := range ts {
		fmt.Fprintf(tw, "%s (%d runs)\t-\t-\t%.1f\t\n", t.Name, t.Runs, mib(float64(t.PeakKiB)))
	}
	fmt.Fprintf(tw, "replaced, total\t%.1f\t%.1f\t%.1f\t\n", mib(idleR), mib(meanR), mib(peakR))
	fmt.Fprintf(tw, "ratio hostd/replaced\t%.2f\t%.2f\t%.2f\t\n", idleH/idleR, meanH/meanR, peakH/peakR)
	tw.Flush()
	fmt.Fprintf(w, "idle: medians of the resident set with every service on, before the load and before hostd's first job;\n"+
		"load mean: sampled resident sets (transient runs when a sample caught them); load peak: the highest\n"+
		"peak between two samples (VmHWM, reset at each sample), the replaced side adding the transient runs of that interval.\n")
	fmt.Fprintf(w, "worst moment: hostd %.1f MiB vs replaced %.1f MiB, %.2fx (interval ending %s)\n", mib(worstH), mib(worstR), worst, stamp(worstAt))
	verdict := func(name string, got, target float64) {
		ok := got <= target
		fmt.Fprintf(w, "target %-34s %.2fx <= %.2fx: %s\n", name, got, target, map[bool]string{true: "met", false: "MISSED"}[ok])
		if !ok && *enforce {
			fail("target %s missed: %.2fx > %.2fx", name, got, target)
		}
	}
	verdict("idle RSS (all services on)", idleH/idleR, 0.4)
	verdict("RSS at any time (worst moment)", worst, 0.5)
	last := load[len(load)-1]

	// Where hostd's memory is.
	fmt.Fprintf(w, "\n== hostd's resident set, MiB (anon = heap, stacks; file = its executable's pages) ==\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\tRSS\tanon\tfile\theap in use\theap idle, not released\tstacks\tGo sys\t")
	row := func(name string, ss []Sample) {
		if len(ss) == 0 {
			return
		}
		f := func(g func(Sample) float64) float64 { return median(col(ss, g)) }
		b := func(v float64) float64 { return v / (1 << 20) }
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name,
			mib(f(hostdRSS)), mib(f(func(s Sample) float64 { return float64(s.Hostd.Anon) })),
			mib(f(func(s Sample) float64 { return float64(s.Hostd.File) })),
			b(f(func(s Sample) float64 { return s.HeapInuse })),
			b(f(func(s Sample) float64 { return s.HeapIdle - s.HeapReleased })),
			b(f(func(s Sample) float64 { return s.StackInuse })),
			b(f(func(s Sample) float64 { return s.GoSys })))
	}
	row("idle (median)", idle)
	row("load (median)", load)
	if i := argmax(col(load, hostdRSS)); i >= 0 {
		row("load peak sample", load[i:i+1])
	}
	row("after load (median)", settle)
	tw.Flush()

	// CPU.
	loadSecs := load[len(load)-1].T - load[0].T
	fmt.Fprintf(w, "\n== CPU seconds under load (%.0f s) ==\n", loadSecs)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tcpu s\t% of one core\t")
	cpuH := last.Hostd.CPU - load[0].Hostd.CPU
	fmt.Fprintf(tw, "hostd\t%.1f\t%.1f\t\n", cpuH, 100*cpuH/loadSecs)
	var cpuR float64
	for _, n := range names {
		c := last.Daemons[n].CPU - load[0].Daemons[n].CPU
		cpuR += c
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t\n", n, c, 100*c/loadSecs)
	}
	for _, t := range ts {
		cpuR += t.CPU
		fmt.Fprintf(tw, "%s (%d runs, %.2f s each)\t%.1f\t%.1f\t\n", t.Name, t.Runs, t.WallMean, t.CPU, 100*t.CPU/loadSecs)
	}
	fmt.Fprintf(tw, "replaced, total\t%.1f\t%.1f\t\n", cpuR, 100*cpuR/loadSecs)
	fmt.Fprintf(tw, "ratio hostd/replaced\t%.2f\t\t\n", cpuH/cpuR)
	tw.Flush()

	// Readiness: every sample, idle, load and after.
	all := append(append(idle[:len(idle):len(idle)], load...), settle...)
	var notReady []Sample
	for _, s := range all {
		if s.Ready != 200 {
			notReady = append(notReady, s)
		}
	}
	fmt.Fprintf(w, "\n== checks ==\n")
	fmt.Fprintf(w, "readiness: %d polls of /readyz, %d not 200\n", len(all), len(notReady))
	for i, s := range notReady {
		if i == 5 {
			fmt.Fprintf(w, "  ... %d more\n", len(notReady)-5)
			break
		}
		fmt.Fprintf(w, "  %s: %d %s\n", stamp(s.T), s.Ready, s.ReadyBody)
	}
	if len(notReady) > 0 {
		fail("/readyz answered other than 200 %d times (first at %s: %d %s)", len(notReady), stamp(notReady[0].T), notReady[0].Ready, notReady[0].ReadyBody)
	}

	// Growth after warm-up: median of the first third against the last.
	start := *loadStart + warmup.Seconds()
	third := (*loadEnd - start) / 3
	var early, late []Sample
	for _, s := range load {
		switch {
		case s.T >= start && s.T < start+third:
			early = append(early, s)
		case s.T >= *loadEnd-third:
			late = append(late, s)
		}
	}
	if len(early) < 3 || len(late) < 3 {
		fail("too few samples to judge growth (%d after warm-up, %d at the end): run longer", len(early), len(late))
	} else {
		fmt.Fprintf(w, "growth after warm-up, %s..%s (%d samples) vs the last %.0f s (%d samples):\n",
			stamp(early[0].T), stamp(early[len(early)-1].T), len(early), third, len(late))
		check := func(name, by string, f func(Sample) float64, bound float64, unit string, scale float64) {
			agg := median
			if by == "floor" {
				agg = minOf
			}
			a, b := agg(col(early, f))/scale, agg(col(late, f))/scale
			ok := b-a <= bound
			fmt.Fprintf(w, "  %-10s %-6s %8.1f -> %8.1f %-3s (%+.1f, bound +%.0f): %s\n", name, by, a, b, unit, b-a, bound, map[bool]string{true: "ok", false: "FAIL"}[ok])
			if !ok {
				fail("%s grew by %.1f %s after warm-up (bound %.0f)", name, b-a, unit, bound)
			}
		}
		bad := false
		for _, s := range load {
			if s.Goroutines < 0 || s.FDs < 0 {
				bad = true
			}
		}
		if bad {
			fail("some samples could not read go_goroutines or /proc/PID/fd (hostd gone or /metrics failing)")
		}
		check("goroutines", "floor", func(s Sample) float64 { return float64(s.Goroutines) }, float64(*maxG), "", 1)
		check("fds", "floor", func(s Sample) float64 { return float64(s.FDs) }, float64(*maxFD), "", 1)
		check("RSS", "median", hostdRSS, *maxRSS, "MiB", 1024)
	}
	if len(settle) > 0 {
		g := func(s Sample) float64 { return float64(s.Goroutines) }
		fd := func(s Sample) float64 { return float64(s.FDs) }
		fmt.Fprintf(w, "after the load stopped (%d samples) vs idle before it (medians): goroutines %.0f vs %.0f, fds %.0f vs %.0f, RSS %.1f vs %.1f MiB\n",
			len(settle), median(col(settle, g)), median(col(idle, g)), median(col(settle, fd)), median(col(idle, fd)),
			mib(median(col(settle, hostdRSS))), mib(idleH))
	}

	// Backups.
	if *scheduled >= 0 {
		fmt.Fprintf(w, "backups: %d scheduled, %d succeeded, %d failed/partial/interrupted, %d snapshots\n", *scheduled, *succeeded, *failedRuns, *snapshots)
		switch {
		case *scheduled == 0:
			fail("no backup was scheduled during the soak: run longer")
		case *snapshots < *scheduled:
			fail("lost backups: %d scheduled runs, %d snapshots", *scheduled, *snapshots)
		case *succeeded < *scheduled:
			fail("lost backups: %d scheduled runs, %d succeeded", *scheduled, *succeeded)
		case *failedRuns > 0:
			fail("%d backup runs did not succeed", *failedRuns)
		}
	}

	if *command != "" {
		fmt.Fprintf(w, "\ncommand: %s\n", *command)
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nSOAK FAILED:\n")
		for _, p := range problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
		return true, nil
	}
	fmt.Fprintf(w, "\nsoak passed\n")
	return false, nil
}

func readSamples(path string) ([]Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Sample
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var s Sample
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func daemonNames(ss []Sample) []string {
	set := map[string]bool{}
	for _, s := range ss {
		for n := range s.Daemons {
			set[n] = true
		}
	}
	var names []string
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func stamp(t float64) string {
	return time.Unix(0, int64(t*1e9)).Format("15:04:05")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	m := math.NaN()
	for i, x := range v {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func maxOf(v []float64) float64 {
	if i := argmax(v); i >= 0 {
		return v[i]
	}
	return math.NaN()
}

func argmax(v []float64) int {
	best := -1
	for i, x := range v {
		if best < 0 || x > v[best] {
			best = i
		}
	}
	return best
}
