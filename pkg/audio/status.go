package audio

import (
	"fmt"
	"strings"
	"time"

	"github.com/jfreymuth/pulse/proto"
)

// Kind says whether a device plays (sink) or records (source).
type Kind string

// Device kinds.
const (
	KindSink   Kind = "sink"
	KindSource Kind = "source"
)

// Status is what GET /v1/audio/status returns and `hostd audio status`
// prints.
type Status struct {
	// Connected is true while hostd holds a connection to the server.
	Connected bool `json:"connected"`
	// Address is the server address hostd connects to.
	Address string `json:"address"`
	// Error is why hostd is not connected (empty when connected).
	Error string `json:"error,omitempty"`
	// Reconnects counts connections made after the first.
	Reconnects int `json:"reconnects"`
	// Server is the server's name and version, as it reports them.
	Server        string `json:"server,omitempty"`
	ServerVersion string `json:"server_version,omitempty"`
	// DefaultSink and DefaultSource are device names.
	DefaultSink   string `json:"default_sink,omitempty"`
	DefaultSource string `json:"default_source,omitempty"`
	// SampleRate is the server's default sample rate in Hz.
	SampleRate uint32 `json:"sample_rate,omitempty"`
	// Quantum is PipeWire's clock quantum, if it could be read.
	Quantum *Quantum `json:"quantum,omitempty"`
	// DropIn is the pipewire.conf.d file hostd manages (empty: none), and
	// DropInError why writing it failed.
	DropIn      string `json:"drop_in,omitempty"`
	DropInError string `json:"drop_in_error,omitempty"`
	// VolumeLimit is the configured limit in percent (0: none).
	VolumeLimit float64  `json:"volume_limit,omitempty"`
	Sinks       []Device `json:"sinks"`
	Sources     []Device `json:"sources"`
	Cards       []Card   `json:"cards"`
	// Updated is when this snapshot was taken from the server.
	Updated time.Time `json:"updated,omitzero"`
}

// Device is one sink or source.
type Device struct {
	Kind        Kind   `json:"kind"`
	Index       uint32 `json:"index"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Volume is the loudest channel in percent, as pactl shows it.
	Volume   int       `json:"volume"`
	Channels []Channel `json:"channels"`
	Mute     bool      `json:"mute"`
	// State is "running", "idle" or "suspended".
	State      string `json:"state"`
	ActivePort string `json:"active_port,omitempty"`
	// Card is the card's index, or -1 for devices without one.
	Card      int64 `json:"card"`
	Bluetooth bool  `json:"bluetooth,omitempty"`
	// Monitor is true for a source that records a sink's output.
	Monitor bool `json:"monitor,omitempty"`
	Default bool `json:"default,omitempty"`
}

// Channel is one channel's volume.
type Channel struct {
	Position string `json:"position"`
	// Raw is the pulse volume (65536 is 100%).
	Raw     uint32 `json:"raw"`
	Percent int    `json:"percent"`
}

// Card is one sound card (a PipeWire device) with its profiles.
type Card struct {
	Index         uint32    `json:"index"`
	Name          string    `json:"name"`
	Description   string    `json:"description,omitempty"`
	Driver        string    `json:"driver,omitempty"`
	ActiveProfile string    `json:"active_profile,omitempty"`
	Profiles      []Profile `json:"profiles"`
	Bluetooth     bool      `json:"bluetooth,omitempty"`
}

// Profile is one card profile.
type Profile struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Sinks       uint32 `json:"sinks"`
	Sources     uint32 `json:"sources"`
	Available   bool   `json:"available"`
}

// Quantum is PipeWire's processing period in samples.
type Quantum struct {
	// Effective is the quantum the graph runs with now (clock.quantum, or
	// clock.force-quantum when that is set).
	Effective int `json:"effective"`
	Min       int `json:"min,omitempty"`
	Max       int `json:"max,omitempty"`
	// Rate is clock.rate in Hz.
	Rate int `json:"rate,omitempty"`
}

// Summary is the one-line status shown by `hostd status`.
func (s *Status) Summary() string {
	if !s.Connected {
		if s.Error == "" {
			return "connecting to " + s.Address
		}
		return "disconnected: " + s.Error
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", s.Server, s.ServerVersion)
	if d := s.Find(KindSink, s.DefaultSink); d != nil {
		fmt.Fprintf(&b, "; sink %s %d%%", d.Name, d.Volume)
		if d.Mute {
			b.WriteString(" muted")
		}
	}
	sources := 0
	for _, d := range s.Sources {
		if !d.Monitor {
			sources++
		}
	}
	fmt.Fprintf(&b, "; %d sinks, %d sources, %d cards", len(s.Sinks), sources, len(s.Cards))
	if s.Quantum != nil {
		fmt.Fprintf(&b, "; quantum %d", s.Quantum.Effective)
		if s.Quantum.Rate > 0 {
			fmt.Fprintf(&b, "@%dHz", s.Quantum.Rate)
		}
	}
	if s.DropInError != "" {
		fmt.Fprintf(&b, "; drop-in not written: %s", s.DropInError)
	}
	return b.String()
}

// Find returns the device of that kind with exactly that name, or nil.
func (s *Status) Find(kind Kind, name string) *Device {
	for i, d := range s.devices(kind) {
		if d.Name == name {
			return &s.devices(kind)[i]
		}
	}
	return nil
}

func (s *Status) devices(kind Kind) []Device {
	if kind == KindSource {
		return s.Sources
	}
	return s.Sinks
}

// clone is a deep enough copy for handing a snapshot out.
func (s *Status) clone() *Status {
	c := *s
	c.Sinks = append([]Device(nil), s.Sinks...)
	c.Sources = append([]Device(nil), s.Sources...)
	c.Cards = append([]Card(nil), s.Cards...)
	if s.Quantum != nil {
		q := *s.Quantum
		c.Quantum = &q
	}
	return &c
}

// pulse device states (pa_sink_state).
var deviceStates = map[uint32]string{0: "running", 1: "idle", 2: "suspended"}

func deviceState(v uint32) string {
	if s, ok := deviceStates[v]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", v)
}

// channelNames are pulse channel positions as pactl names them.
var channelNames = map[byte]string{
	proto.ChannelMono: "mono", proto.ChannelFrontLeft: "front-left", proto.ChannelFrontRight: "front-right",
	proto.ChannelFrontCenter: "front-center", proto.ChannelRearCenter: "rear-center",
	proto.ChannelRearLeft: "rear-left", proto.ChannelRearRight: "rear-right", proto.ChannelLFE: "lfe",
	proto.ChannelLeftCenter: "front-left-of-center", proto.ChannelRightCenter: "front-right-of-center",
	proto.ChannelLeftSide: "side-left", proto.ChannelRightSide: "side-right",
	proto.ChannelTopCenter: "top-center", proto.ChannelTopFrontLeft: "top-front-left",
	proto.ChannelTopFrontRight: "top-front-right", proto.ChannelTopFrontCenter: "top-front-center",
	proto.ChannelTopRearLeft: "top-rear-left", proto.ChannelTopRearRight: "top-rear-right",
	proto.ChannelTopRearCenter: "top-rear-center",
}

func channelName(p byte) string {
	if n, ok := channelNames[p]; ok {
		return n
	}
	if p >= proto.ChannelAux0 && p <= proto.ChannelAux31 {
		return fmt.Sprintf("aux%d", p-proto.ChannelAux0)
	}
	return fmt.Sprintf("channel%d", p)
}

func channels(m proto.ChannelMap, vs proto.ChannelVolumes) []Channel {
	out := make([]Channel, len(vs))
	for i, v := range vs {
		pos := fmt.Sprintf("channel%d", i)
		if i < len(m) {
			pos = channelName(m[i])
		}
		out[i] = Channel{Position: pos, Raw: v, Percent: roundPercent(v)}
	}
	return out
}

func prop(p proto.PropList, key string) string {
	if e, ok := p[key]; ok {
		return e.String()
	}
	return ""
}

// description is the device's description: the protocol carries it in the
// field the library calls Device, with the device.description property as
// a fallback.
func description(field string, p proto.PropList) string {
	if field != "" {
		return field
	}
	return prop(p, "device.description")
}

// isBluetooth tells Bluetooth devices by the properties PipeWire's bluez
// monitor sets, falling back to its node naming.
func isBluetooth(name string, p proto.PropList) bool {
	return prop(p, "device.bus") == "bluetooth" || prop(p, "device.api") == "bluez5" ||
		strings.HasPrefix(name, "bluez_")
}

// cardIndex maps pulse's "no card" to -1.
func cardIndex(i uint32) int64 {
	if i == proto.Undefined {
		return -1
	}
	return int64(i)
}

func sinkDevice(r *proto.GetSinkInfoReply) Device {
	ch := channels(r.ChannelMap, r.ChannelVolumes)
	return Device{
		Kind: KindSink, Index: r.SinkIndex, Name: r.SinkName,
		Description: description(r.Device, r.Properties),
		Volume:      roundPercent(maxVolume(r.ChannelVolumes)), Channels: ch, Mute: r.Mute,
		State: deviceState(r.State), ActivePort: r.ActivePortName, Card: cardIndex(r.CardIndex),
		Bluetooth: isBluetooth(r.SinkName, r.Properties),
	}
}

func sourceDevice(r *proto.GetSourceInfoReply) Device {
	ch := channels(r.ChannelMap, r.ChannelVolumes)
	return Device{
		Kind: KindSource, Index: r.SourceIndex, Name: r.SourceName,
		Description: description(r.Device, r.Properties),
		Volume:      roundPercent(maxVolume(r.ChannelVolumes)), Channels: ch, Mute: r.Mute,
		State: deviceState(r.State), ActivePort: r.ActivePortName, Card: cardIndex(r.CardIndex),
		Bluetooth: isBluetooth(r.SourceName, r.Properties),
		Monitor:   r.MonitorSourceIndex != proto.Undefined,
	}
}

func card(r *proto.GetCardInfoReply) Card {
	c := Card{
		Index: r.CardIndex, Name: r.CardName, Driver: r.Driver,
		Description:   prop(r.Properties, "device.description"),
		ActiveProfile: r.ActiveProfileName,
		Bluetooth:     isBluetooth(r.CardName, r.Properties),
		Profiles:      make([]Profile, 0, len(r.Profiles)),
	}
	for _, p := range r.Profiles {
		c.Profiles = append(c.Profiles, Profile{
			Name: p.Name, Description: p.Description, Sinks: p.NumSinks, Sources: p.NumSources,
			// Since protocol 29 the server sends 1 for available, 0 for not.
			Available: p.Available != 0,
		})
	}
	return c
}

// rawVolumes returns the per-channel raw volumes of a device.
func (d *Device) rawVolumes() []uint32 {
	out := make([]uint32, len(d.Channels))
	for i, c := range d.Channels {
		out[i] = c.Raw
	}
	return out
}
