package audio

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/jfreymuth/pulse/proto"
)

// FuzzPulseDevice runs what hostd does with a sink or source as the pulse
// server describes it (any name, channel map, per-channel volumes, mute,
// state, card and properties) through hostd's own code: the conversion to
// a Device, the lookup, the policy's plan, and remembering its settings.
// Nothing may panic, the device keeps one channel per volume, no planned
// volume goes above MaxPercent, and whatever is remembered is read back
// from the file as it was saved (one odd device must not make the whole
// file unreadable at the next start).
func FuzzPulseDevice(f *testing.F) {
	vols := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.BigEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	f.Add("alsa_output.usb-DAC", "USB DAC", []byte{proto.ChannelFrontLeft, proto.ChannelFrontRight}, vols(65536, 65536), false, uint32(0), uint32(1), "usb", false)
	f.Add("bluez_output.00_11", "", []byte{proto.ChannelMono}, vols(0x7fffffff), true, uint32(2), uint32(proto.Undefined), "bluetooth", false)
	f.Add("alsa_input.pci.monitor", "Monitor of Built-in", []byte{}, vols(), false, uint32(1), uint32(0), "", true)
	f.Add("pro.64ch", "Pro interface", make([]byte, 64), vols(slices.Repeat([]uint32{65536}, 64)...), false, uint32(0), uint32(3), "pci", false)
	f.Add("", "", []byte{255, 0, 51, 50}, vols(1, 2, 3), false, ^uint32(0), uint32(0), "", false)
	f.Add("@DEFAULT_SINK@", "3", []byte{proto.ChannelAux0 + 31}, vols(^uint32(0)), true, uint32(7), uint32(5), "usb", false)

	limit := Percent(90)
	startup := Percent(40)
	cfg := Config{PreferredSinks: []string{"bluez_output.*", "alsa_output.usb-*"}, PreferredSources: []string{"alsa_input.*"},
		VolumeLimit: limit, StartupVolume: &startup, Remember: true}
	pol := newPolicy(&cfg)
	f.Fuzz(func(t *testing.T, name, desc string, chmap, rawVols []byte, mute bool, state, card uint32, bus string, source bool) {
		if len(rawVols) > 4*256 || len(chmap) > 256 {
			return // the protocol carries at most 255 channels
		}
		vs := make(proto.ChannelVolumes, len(rawVols)/4)
		for i := range vs {
			vs[i] = binary.BigEndian.Uint32(rawVols[4*i:])
		}
		props := proto.PropList{"device.bus": proto.PropListString(bus), "device.description": proto.PropListString(desc)}
		st := &Status{Connected: true}
		var d Device
		kind := KindSink
		if source {
			kind = KindSource
			mon := uint32(proto.Undefined)
			if len(name)%2 == 1 {
				mon = 1
			}
			d = sourceDevice(&proto.GetSourceInfoReply{SourceIndex: 3, SourceName: name, Device: desc, ChannelMap: chmap, ChannelVolumes: vs,
				Mute: mute, State: state, CardIndex: card, Properties: props, MonitorSourceIndex: mon})
			st.Sources = []Device{d}
			st.DefaultSource = resolvedName(name)
		} else {
			d = sinkDevice(&proto.GetSinkInfoReply{SinkIndex: 3, SinkName: name, Device: desc, ChannelMap: chmap, ChannelVolumes: vs,
				Mute: mute, State: state, CardIndex: card, Properties: props})
			st.Sinks = []Device{d}
			st.DefaultSink = resolvedName(name)
		}
		if len(d.Channels) != len(vs) {
			t.Fatalf("%d channels for %d volumes", len(d.Channels), len(vs))
		}
		_ = st.Summary()
		for _, ref := range []string{"", name, "#3", desc} {
			_, _ = st.Lookup(kind, ref)
		}

		// Remember the device, save, and read the file back.
		m := &memory{devices: map[string]Remembered{}}
		m.record(kind, d.Name, d.rawVolumes(), d.Mute, time.Unix(1, 0))
		data, err := encodeMemory(m.devices)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := decodeMemory(data)
		if err != nil {
			t.Fatalf("a remembered device makes the file unreadable: %v\n%s", err, data)
		}
		if len(back) != len(m.devices) {
			t.Fatalf("read back %d devices, saved %d", len(back), len(m.devices))
		}
		mem := func(k Kind, n string) (Remembered, bool) { return m.get(k, n) }

		for _, fresh := range []bool{false, true} {
			fr := map[string]bool{memoryKey(kind, d.Name): fresh}
			for _, a := range pol.plan(st, fr, map[string]bool{}, true, mem) {
				if a.Type == actVolume && (len(a.Volumes) != len(d.Channels) || maxVolume(a.Volumes) > fromPercent(MaxPercent)) {
					t.Fatalf("planned %v for a device with %d channels", a, len(d.Channels))
				}
			}
		}
	})
}
