package audio

import (
	"strings"
	"testing"
)

// dev builds a two-channel device at pct percent.
func dev(kind Kind, index uint32, name string, pct float64, mute bool) Device {
	v := fromPercent(pct)
	return Device{Kind: kind, Index: index, Name: name, Volume: roundPercent(v), Mute: mute,
		Channels: []Channel{{Position: "front-left", Raw: v}, {Position: "front-right", Raw: v}}, Card: -1}
}

func monitor(index uint32, sink string) Device {
	d := dev(KindSource, index, sink+".monitor", 100, false)
	d.Monitor = true
	return d
}

func TestPolicyPlan(t *testing.T) {
	f := func(p float64) *float64 { return &p }
	base := func() *Status {
		return &Status{
			DefaultSink: "alsa_output.pci-0000_00_1f.3.analog-stereo", DefaultSource: "alsa_input.pci.analog",
			Sinks: []Device{
				dev(KindSink, 1, "alsa_output.pci-0000_00_1f.3.analog-stereo", 50, false),
				dev(KindSink, 2, "alsa_output.usb-DAC.analog-stereo", 150, false),
				dev(KindSink, 3, "bluez_output.00_11.1", 40, false),
			},
			Sources: []Device{
				monitor(10, "alsa_output.usb-DAC.analog-stereo"),
				dev(KindSource, 11, "alsa_input.pci.analog", 100, false),
				dev(KindSource, 12, "alsa_input.usb-mic", 100, false),
			},
		}
	}
	memory := map[string]Remembered{
		"sink:bluez_output.00_11.1":              {Volumes: []uint32{fromPercent(25), fromPercent(25)}, Mute: true},
		"sink:alsa_output.usb-DAC.analog-stereo": {Volumes: []uint32{fromPercent(60)}}, // mono then
	}
	recallFrom := func(m map[string]Remembered) recall {
		return func(k Kind, n string) (Remembered, bool) { r, ok := m[memoryKey(k, n)]; return r, ok }
	}
	all := map[string]bool{"sink:alsa_output.pci-0000_00_1f.3.analog-stereo": true,
		"sink:alsa_output.usb-DAC.analog-stereo": true, "sink:bluez_output.00_11.1": true,
		"source:alsa_input.pci.analog": true, "source:alsa_input.usb-mic": true}
	tests := []struct {
		name           string
		policy         policy
		fresh          map[string]bool
		devicesChanged bool
		want           []string
		known          map[string]bool
	}{
		{"nothing configured", policy{}, all, true, nil, nil},
		{"limit pulls back loud sinks only", policy{Limit: 100}, nil, false,
			[]string{"sink alsa_output.usb-DAC.analog-stereo volume := 100% (limit)"}, nil},
		{"preferred sink picks the first pattern present",
			policy{PreferredSinks: []string{"bluez_output.*", "alsa_output.usb-*", "alsa_output.pci-*"}}, nil, true,
			[]string{"default sink := bluez_output.00_11.1 (preferred)"}, nil},
		{"preferred sink only when devices change",
			policy{PreferredSinks: []string{"bluez_output.*"}}, nil, false, nil, nil},
		{"default already matching the best pattern stays",
			policy{PreferredSinks: []string{"alsa_output.*", "bluez_output.*"}}, nil, true, nil, nil},
		{"no pattern matches: default stays", policy{PreferredSinks: []string{"hdmi*"}}, nil, true, nil, nil},
		{"monitors need a .monitor pattern", policy{PreferredSources: []string{"*usb*"}}, nil, true,
			[]string{"default source := alsa_input.usb-mic (preferred)"}, nil},
		{"a .monitor pattern picks a monitor", policy{PreferredSources: []string{"*.monitor"}}, nil, true,
			[]string{"default source := alsa_output.usb-DAC.analog-stereo.monitor (preferred)"}, nil},
		{"restore remembered on fresh devices, fit channels, clamp",
			policy{Remember: true, Limit: 50},
			map[string]bool{"sink:bluez_output.00_11.1": true, "sink:alsa_output.usb-DAC.analog-stereo": true}, false,
			[]string{
				"sink alsa_output.usb-DAC.analog-stereo volume := 50% (restore)",
				"sink bluez_output.00_11.1 mute := true (restore)",
				"sink bluez_output.00_11.1 volume := 25% (restore)",
			}, nil},
		{"remember off: startup volume instead", policy{Startup: f(30)},
			map[string]bool{"sink:bluez_output.00_11.1": true, "source:alsa_input.usb-mic": true}, false,
			[]string{"sink bluez_output.00_11.1 volume := 30% (startup)"}, nil},
		{"startup only for devices nothing is remembered of", policy{Remember: true, Startup: f(30)}, all, false,
			[]string{
				"sink alsa_output.pci-0000_00_1f.3.analog-stereo volume := 30% (startup)",
				"sink alsa_output.usb-DAC.analog-stereo volume := 60% (restore)",
				"sink bluez_output.00_11.1 mute := true (restore)",
				"sink bluez_output.00_11.1 volume := 25% (restore)",
			}, nil},
		{"known devices are not restored", policy{Remember: true}, nil, false, nil, nil},
		{"startup only for devices new to this run", policy{Startup: f(30)},
			map[string]bool{"sink:bluez_output.00_11.1": true, "sink:alsa_output.usb-DAC.analog-stereo": true}, false,
			[]string{"sink bluez_output.00_11.1 volume := 30% (startup)"},
			map[string]bool{"sink:alsa_output.usb-DAC.analog-stereo": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range tt.policy.plan(base(), tt.fresh, tt.known, tt.devicesChanged, recallFrom(memory)) {
				got = append(got, a.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestClampSlack(t *testing.T) {
	// PipeWire may hand back a volume a unit above the one set; that is not
	// a reason to set it again (and again).
	top := fromPercent(80)
	for _, v := range []uint32{top, top + 1, top + limitSlack} {
		if got := clampVolumes([]uint32{v}, 80); got[0] != v {
			t.Errorf("clamp(%d) = %d, want unchanged", v, got[0])
		}
	}
	if got := clampVolumes([]uint32{top + limitSlack + 1}, 80); got[0] != top {
		t.Errorf("clamp above slack = %d, want %d", got[0], top)
	}
}
