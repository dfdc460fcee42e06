package audio

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jfreymuth/pulse/proto"
)

// grow sets the slice *s (of an unnamed element type) to n zero elements.
func grow(s any, n int) {
	v := reflect.ValueOf(s).Elem()
	v.Set(reflect.MakeSlice(v.Type(), n, n))
}

func TestCardFromReply(t *testing.T) {
	r := &proto.GetCardInfoReply{
		CardIndex: 4, CardName: "bluez_card.00_11", Driver: "module-bluez5-device.c",
		ActiveProfileName: "a2dp-sink",
		Properties: proto.PropList{
			"device.description": proto.PropListString("WH-1000XM4"),
			"device.bus":         proto.PropListString("bluetooth"),
		},
	}
	grow(&r.Profiles, 3)
	r.Profiles[0].Name, r.Profiles[0].NumSinks, r.Profiles[0].Available = "a2dp-sink", 1, 1
	r.Profiles[1].Name, r.Profiles[1].NumSinks, r.Profiles[1].NumSources, r.Profiles[1].Available = "headset-head-unit", 1, 1, 0
	r.Profiles[2].Name, r.Profiles[2].Available = "off", 1
	c := card(r)
	if c.Index != 4 || c.Description != "WH-1000XM4" || !c.Bluetooth || c.ActiveProfile != "a2dp-sink" || len(c.Profiles) != 3 {
		t.Fatalf("card = %+v", c)
	}
	if !c.Profiles[0].Available || c.Profiles[1].Available || c.Profiles[1].Sources != 1 {
		t.Errorf("profiles = %+v", c.Profiles)
	}
}

func TestSinkFromReply(t *testing.T) {
	r := &proto.GetSinkInfoReply{
		SinkIndex: 7, SinkName: "alsa_output.usb", Device: "USB DAC",
		ChannelMap:     proto.ChannelMap{proto.ChannelFrontLeft, proto.ChannelFrontRight, proto.ChannelLFE, proto.ChannelAux0 + 3, 99},
		ChannelVolumes: proto.ChannelVolumes{fromPercent(40), fromPercent(50), 0, fromPercent(10), fromPercent(10)},
		Mute:           true, State: 0, CardIndex: proto.Undefined, ActivePortName: "analog-output",
	}
	d := sinkDevice(r)
	var pos []string
	for _, c := range d.Channels {
		pos = append(pos, c.Position)
	}
	if d.Description != "USB DAC" || d.Volume != 50 || !d.Mute || d.State != "running" || d.Card != -1 ||
		d.ActivePort != "analog-output" || d.Bluetooth || strings.Join(pos, " ") != "front-left front-right lfe aux3 channel99" {
		t.Errorf("device = %+v (%v)", d, pos)
	}
	r.Device, r.State, r.CardIndex = "", 7, 2
	r.Properties = proto.PropList{"device.description": proto.PropListString("From props")}
	d = sinkDevice(r)
	if d.Description != "From props" || d.State != "unknown(7)" || d.Card != 2 {
		t.Errorf("fallbacks: %+v", d)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		st   Status
		want string
	}{
		{Status{Address: "unix:/x"}, "connecting to unix:/x"},
		{Status{Address: "unix:/x", Error: "connection refused"}, "disconnected: connection refused"},
		{Status{Connected: true, Server: "PulseAudio (on PipeWire 1.0)", ServerVersion: "15.0.0", DefaultSink: "a",
			Sinks: []Device{dev(KindSink, 1, "a", 40, true)}, Quantum: &Quantum{Effective: 256, Rate: 48000}},
			"PulseAudio (on PipeWire 1.0) 15.0.0; sink a 40% muted; 1 sinks, 0 sources, 0 cards; quantum 256@48000Hz"},
	}
	for _, tt := range tests {
		if got := tt.st.Summary(); got != tt.want {
			t.Errorf("Summary = %q, want %q", got, tt.want)
		}
	}
}
