package audio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	tests := []struct {
		in      string
		want    VolumeChange
		wantErr string
	}{
		{"40%", VolumeChange{Percent: 40}, ""},
		{" 40% ", VolumeChange{Percent: 40}, ""},
		{"0%", VolumeChange{Percent: 0}, ""},
		{"200%", VolumeChange{Percent: 200}, ""},
		{"40.5%", VolumeChange{Percent: 40.5}, ""},
		{"+5%", VolumeChange{Percent: 5, Relative: true}, ""},
		{"-5%", VolumeChange{Percent: -5, Relative: true}, ""},
		{"+0.5%", VolumeChange{Percent: 0.5, Relative: true}, ""},
		{"", VolumeChange{}, "empty volume"},
		{"40", VolumeChange{}, "missing %"},
		{"%", VolumeChange{}, "not a number"},
		{"+%", VolumeChange{}, "not a number"},
		{"loud%", VolumeChange{}, "not a number"},
		{"1e2%", VolumeChange{}, "not a number"},
		{"inf%", VolumeChange{}, "not a number"},
		{"NaN%", VolumeChange{}, "not a number"},
		{"0x10%", VolumeChange{}, "not a number"},
		{"1.2.3%", VolumeChange{}, "not a number"},
		{".%", VolumeChange{}, "not a number"},
		{"--5%", VolumeChange{}, "not a number"},
		{"201%", VolumeChange{}, "above 200%"},
		{"+300%", VolumeChange{}, "above 200%"},
		{"40%%", VolumeChange{}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVolume(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadVolume) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVolume(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVolume(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestVolumeApply(t *testing.T) {
	pct := func(ps ...float64) []uint32 {
		out := make([]uint32, len(ps))
		for i, p := range ps {
			out[i] = fromPercent(p)
		}
		return out
	}
	tests := []struct {
		name   string
		change string
		cur    []uint32
		limit  float64
		want   []uint32
	}{
		{"absolute", "40%", pct(100, 100), 0, pct(40, 40)},
		{"absolute keeps no balance", "40%", pct(100, 50), 0, pct(40, 40)},
		{"up keeps balance", "+5%", pct(40, 20), 0, pct(45, 25)},
		{"down stops at zero", "-15%", pct(10, 50), 0, pct(0, 35)},
		{"limit caps absolute", "150%", pct(40, 40), 80, pct(80, 80)},
		{"limit caps relative", "+50%", pct(70, 40), 80, pct(80, 80)},
		{"no limit caps at max", "+100%", pct(150), 0, pct(200)},
		{"mono", "25%", pct(90), 0, pct(25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseVolume(tt.change)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Apply(tt.cur, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("Apply = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPercentConversion(t *testing.T) {
	tests := []struct {
		raw  uint32
		want int
	}{
		{0, 0}, {65536, 100}, {98304, 150}, {26214, 40}, {26215, 40}, {655, 1}, {327, 0}, {328, 1},
	}
	for _, tt := range tests {
		if got := roundPercent(tt.raw); got != tt.want {
			t.Errorf("roundPercent(%d) = %d, want %d", tt.raw, got, tt.want)
		}
	}
	for p := 0; p <= MaxPercent; p++ {
		if got := roundPercent(fromPercent(float64(p))); got != p {
			t.Errorf("roundPercent(fromPercent(%d)) = %d", p, got)
		}
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"40%", "+5%", "-5%", "40.5%", "", "%", "1e3%", "200%", "-0%", "+.5%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseVolume(s)
		if err != nil {
			if !errors.Is(err, ErrBadVolume) {
				t.Fatalf("error %v does not wrap ErrBadVolume", err)
			}
			return
		}
		if c.Percent > MaxPercent || c.Percent < -MaxPercent || (!c.Relative && c.Percent < 0) {
			t.Fatalf("ParseVolume(%q) = %+v out of range", s, c)
		}
		again, err := ParseVolume(c.String())
		if err != nil || again != c {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, c.String(), again, err)
		}
		for _, v := range c.Apply([]uint32{0, volumeNorm, fromPercent(MaxPercent)}, 0) {
			if v > fromPercent(MaxPercent) {
				t.Fatalf("Apply gave %d above the maximum", v)
			}
		}
	})
}

func ExampleParseVolume() {
	for _, s := range []string{"40%", "+5%", "-5%", "40"} {
		c, err := ParseVolume(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(c, "relative:", c.Relative)
	}
	// Output:
	// 40% relative: false
	// +5% relative: true
	// -5% relative: true
	// bad volume "40": missing %: want a percentage such as 40%, +5% or -5%
}
