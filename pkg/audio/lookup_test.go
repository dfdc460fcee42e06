package audio

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func lookupFixture() *Status {
	a := dev(KindSink, 3, "alsa_output.pci.analog-stereo", 50, false)
	a.Description = "Built-in Audio Analog Stereo"
	b := dev(KindSink, 7, "alsa_output.usb-Topping.analog-stereo", 50, false)
	b.Description = "Topping D10 Analog Stereo"
	c := dev(KindSink, 9, "bluez_output.00_11.1", 50, false)
	c.Description = "WH-1000XM4"
	return &Status{
		DefaultSink: "alsa_output.pci.analog-stereo",
		Sinks:       []Device{a, b, c},
		Cards: []Card{
			{Index: 1, Name: "alsa_card.pci-0000_00_1f.3", Description: "Built-in Audio",
				Profiles: []Profile{{Name: "output:analog-stereo"}, {Name: "off"}}},
			{Index: 2, Name: "bluez_card.00_11", Description: "WH-1000XM4",
				Profiles: []Profile{{Name: "a2dp-sink"}, {Name: "headset-head-unit"}, {Name: "off"}}},
		},
	}
}

func TestLookup(t *testing.T) {
	st := lookupFixture()
	tests := []struct {
		kind    Kind
		ref     string
		want    string
		wantErr error
		msg     string
	}{
		{KindSink, "", "alsa_output.pci.analog-stereo", nil, ""},
		{KindSink, "bluez_output.00_11.1", "bluez_output.00_11.1", nil, ""},
		{KindSink, "7", "alsa_output.usb-Topping.analog-stereo", nil, ""},
		{KindSink, "#9", "bluez_output.00_11.1", nil, ""},
		{KindSink, "topping", "alsa_output.usb-Topping.analog-stereo", nil, ""},
		{KindSink, "XM4", "bluez_output.00_11.1", nil, ""},
		{KindSink, "analog stereo", "", ErrAmbiguous, "alsa_output.pci.analog-stereo, alsa_output.usb-Topping.analog-stereo"},
		{KindSink, "42", "", ErrNoDevice, "no sink with index 42"},
		{KindSink, "hdmi", "", ErrNoDevice, `no sink named "hdmi"`},
		{KindSource, "", "", ErrNoDevice, "no default source"},
		{KindSource, "mic", "", ErrNoDevice, "there are no sources"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.kind, tt.ref), func(t *testing.T) {
			d, err := st.Lookup(tt.kind, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("Lookup = %v, want %v with %q", err, tt.wantErr, tt.msg)
				}
				return
			}
			if err != nil || d.Name != tt.want {
				t.Fatalf("Lookup = %v, %v; want %s", d, err, tt.want)
			}
		})
	}
}

func TestLookupCardAndProfile(t *testing.T) {
	st := lookupFixture()
	tests := []struct {
		ref, profile string
		want         string
		wantErr      error
		msg          string
	}{
		{"bluez_card.00_11", "a2dp-sink", "bluez_card.00_11", nil, ""},
		{"2", "off", "bluez_card.00_11", nil, ""},
		{"built-in", "off", "alsa_card.pci-0000_00_1f.3", nil, ""},
		{"xm4", "headset-head-unit", "bluez_card.00_11", nil, ""},
		{"card", "off", "", ErrAmbiguous, "matches 2 cards"},
		{"9", "off", "", ErrNoDevice, "no card with index 9"},
		{"hdmi", "off", "", ErrNoDevice, `no card matches "hdmi"`},
		{"", "off", "", ErrBadRequest, "no card given"},
		{"xm4", "a2dp-sink-aac", "", ErrBadRequest, "profiles: a2dp-sink, headset-head-unit, off"},
	}
	for _, tt := range tests {
		t.Run(tt.ref+"/"+tt.profile, func(t *testing.T) {
			c, err := st.LookupCard(tt.ref)
			if err == nil {
				_, err = c.Profile(tt.profile)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("got %v, want %v with %q", err, tt.wantErr, tt.msg)
				}
				return
			}
			if err != nil || c.Name != tt.want {
				t.Fatalf("got %v, %v; want %s", c, err, tt.want)
			}
		})
	}
}

func ExampleStatus_Lookup() {
	st := &Status{DefaultSink: "alsa_output.pci.analog-stereo", Sinks: []Device{
		{Index: 3, Name: "alsa_output.pci.analog-stereo", Description: "Built-in Audio"},
		{Index: 7, Name: "alsa_output.usb-Topping.analog-stereo", Description: "Topping D10"},
	}}
	for _, ref := range []string{"", "7", "topping", "hdmi"} {
		d, err := st.Lookup(KindSink, ref)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q -> %s\n", ref, d.Name)
	}
	// Output:
	// "" -> alsa_output.pci.analog-stereo
	// "7" -> alsa_output.usb-Topping.analog-stereo
	// "topping" -> alsa_output.usb-Topping.analog-stereo
	// no such device: no sink named "hdmi" or with it in its description (sinks: alsa_output.pci.analog-stereo, alsa_output.usb-Topping.analog-stereo)
}
