package audio

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// volumeNorm is the pulse volume for 100% (0 dB).
const volumeNorm = 0x10000

// MaxPercent is the highest volume hostd sets, whatever is asked: pulse
// allows more, but nothing above it is a sensible setting for a speaker.
const MaxPercent = 200

// ErrBadVolume is wrapped by every volume parsing error.
var ErrBadVolume = errors.New("bad volume")

// VolumeChange is a parsed volume request: an absolute level ("40%") or a
// step up or down from the current level ("+5%", "-5%").
type VolumeChange struct {
	// Percent is the level (absolute) or the step (relative, signed).
	Percent float64
	// Relative is true for "+N%" and "-N%".
	Relative bool
}

// String formats the change the way ParseVolume accepts it.
func (c VolumeChange) String() string {
	num := strconv.FormatFloat(c.Percent, 'f', -1, 64)
	if c.Relative && c.Percent >= 0 {
		num = "+" + num
	}
	return num + "%"
}

// ParseVolume parses "40%", "+5%" or "-5%" (decimals allowed, "40.5%").
// Absolute levels must lie in 0..MaxPercent and steps within ±MaxPercent.
func ParseVolume(s string) (VolumeChange, error) {
	orig := s
	s = strings.TrimSpace(s)
	var c VolumeChange
	if s == "" {
		return c, fmt.Errorf("%w: empty volume: want a percentage such as 40%%, +5%% or -5%%", ErrBadVolume)
	}
	if !strings.HasSuffix(s, "%") {
		return c, fmt.Errorf("%w %q: missing %%: want a percentage such as 40%%, +5%% or -5%%", ErrBadVolume, orig)
	}
	s = strings.TrimSuffix(s, "%")
	sign := 1.0
	switch {
	case strings.HasPrefix(s, "+"):
		c.Relative = true
		s = s[1:]
	case strings.HasPrefix(s, "-"):
		c.Relative = true
		sign = -1
		s = s[1:]
	}
	// Only plain decimal digits: ParseFloat alone would take "inf", "1e3"
	// and hex floats.
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || s == "." {
		return VolumeChange{}, fmt.Errorf("%w %q: not a number: want a percentage such as 40%%, +5%% or -5%%", ErrBadVolume, orig)
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return VolumeChange{}, fmt.Errorf("%w %q: not a number", ErrBadVolume, orig)
	}
	if n > MaxPercent {
		return VolumeChange{}, fmt.Errorf("%w %q: above %d%%", ErrBadVolume, orig, MaxPercent)
	}
	c.Percent = sign * n
	if n == 0 {
		c.Percent = 0 // no negative zero: "-0%" is "+0%"
	}
	return c, nil
}

// Apply returns the per-channel volumes after the change, each kept within
// 0..limit percent (limit <= 0 means MaxPercent). A relative change moves
// every channel by the same step, keeping the balance.
func (c VolumeChange) Apply(current []uint32, limit float64) []uint32 {
	if limit <= 0 || limit > MaxPercent {
		limit = MaxPercent
	}
	out := make([]uint32, len(current))
	for i, v := range current {
		p := c.Percent
		if c.Relative {
			p = toPercent(v) + c.Percent
		}
		out[i] = fromPercent(math.Min(math.Max(p, 0), limit))
	}
	return out
}

// toPercent converts a pulse volume to a percentage (100% is 0x10000).
func toPercent(v uint32) float64 {
	return float64(v) * 100 / volumeNorm
}

// fromPercent converts a percentage to a pulse volume, rounding to nearest.
func fromPercent(p float64) uint32 {
	if p <= 0 {
		return 0
	}
	return uint32(math.Round(p * volumeNorm / 100))
}

// roundPercent is a pulse volume as a whole percentage, rounded the way
// pactl shows it.
func roundPercent(v uint32) int {
	return int((uint64(v)*100 + volumeNorm/2) / volumeNorm)
}

// maxVolume is the loudest channel, as pulse reports a device's volume.
func maxVolume(vs []uint32) uint32 {
	var m uint32
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}
