package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

func init() { registerCollector("timex", newTimexCollector) }

func timexDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "timex", name), help, nil, nil)
}

var (
	timexSyncDesc      = timexDesc("sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).")
	timexOffsetDesc    = timexDesc("offset_seconds", "Time offset in between local system and reference clock.")
	timexFreqDesc      = timexDesc("frequency_adjustment_ratio", "Local clock frequency adjustment.")
	timexMaxerrorDesc  = timexDesc("maxerror_seconds", "Maximum error in seconds.")
	timexEsterrorDesc  = timexDesc("estimated_error_seconds", "Estimated error in seconds.")
	timexStatusDesc    = timexDesc("status", "Value of the status array bits.")
	timexConstantDesc  = timexDesc("loop_time_constant", "Phase-locked loop time constant.")
	timexTickDesc      = timexDesc("tick_seconds", "Seconds between clock ticks.")
	timexPPSFreqDesc   = timexDesc("pps_frequency_hertz", "Pulse per second frequency.")
	timexPPSJitterDesc = timexDesc("pps_jitter_seconds", "Pulse per second jitter.")
	timexPPSShiftDesc  = timexDesc("pps_shift_seconds", "Pulse per second interval duration.")
	timexPPSStabilDesc = timexDesc("pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.")
	timexPPSJitcntDesc = timexDesc("pps_jitter_total", "Pulse per second count of jitter limit exceeded events.")
	timexPPSCalcntDesc = timexDesc("pps_calibration_total", "Pulse per second count of calibration intervals.")
	timexPPSErrcntDesc = timexDesc("pps_error_total", "Pulse per second count of calibration errors.")
	timexPPSStbcntDesc = timexDesc("pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events.")
	timexTAIOffsetDesc = timexDesc("tai_offset_seconds", "International Atomic Time (TAI) offset.")
)

// ppm16frac converts the kernel's scaled parts per million (16-bit
// fraction) to a ratio.
const ppm16frac = 1000000.0 * 65536.0

// timexCollector exports the kernel clock discipline's state (adjtimex(2)
// without changing anything), as node_exporter does: whether the clock is
// synchronised, its offset, error bounds and PPS counters.
type timexCollector struct {
	h       *host
	adjtime func(*unix.Timex) (int, error)
}

func newTimexCollector(h *host) (collector, error) {
	return &timexCollector{h: h, adjtime: unix.Adjtimex}, nil
}

func (c *timexCollector) Update(ch emitter) error {
	var tx unix.Timex
	state, err := c.adjtime(&tx)
	if err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	for _, m := range timexMetrics(&tx, state, c.h.series) {
		ch(m)
	}
	return nil
}

// timexMetrics turns one adjtimex answer into node_exporter's metrics.
func timexMetrics(tx *unix.Timex, state int, sc *seriesCache) []prometheus.Metric {
	sync := 1.0
	if state == unix.TIME_ERROR {
		sync = 0
	}
	divisor := 1e6 // offsets in microseconds ...
	if tx.Status&unix.STA_NANO != 0 {
		divisor = 1e9 // ... or nanoseconds
	}
	g := func(d *prometheus.Desc, v float64) prometheus.Metric {
		return sc.metric(d, prometheus.GaugeValue, v)
	}
	cnt := func(d *prometheus.Desc, v float64) prometheus.Metric {
		return sc.metric(d, prometheus.CounterValue, v)
	}
	return []prometheus.Metric{
		g(timexSyncDesc, sync),
		g(timexOffsetDesc, float64(tx.Offset)/divisor),
		g(timexFreqDesc, 1+float64(tx.Freq)/ppm16frac),
		g(timexMaxerrorDesc, float64(tx.Maxerror)/1e6),
		g(timexEsterrorDesc, float64(tx.Esterror)/1e6),
		g(timexStatusDesc, float64(tx.Status)),
		g(timexConstantDesc, float64(tx.Constant)),
		g(timexTickDesc, float64(tx.Tick)/1e6),
		g(timexPPSFreqDesc, float64(tx.Ppsfreq)/ppm16frac),
		g(timexPPSJitterDesc, float64(tx.Jitter)/divisor),
		g(timexPPSShiftDesc, float64(tx.Shift)),
		g(timexPPSStabilDesc, float64(tx.Stabil)/ppm16frac),
		cnt(timexPPSJitcntDesc, float64(tx.Jitcnt)),
		cnt(timexPPSCalcntDesc, float64(tx.Calcnt)),
		cnt(timexPPSErrcntDesc, float64(tx.Errcnt)),
		cnt(timexPPSStbcntDesc, float64(tx.Stbcnt)),
		g(timexTAIOffsetDesc, float64(tx.Tai)),
	}
}
