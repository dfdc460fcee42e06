// Package audio is hostd's control plane for the PipeWire audio stack: the
// "audio" service.
//
// It talks to PipeWire's PulseAudio-compatible server (pipewire-pulse) over
// the pulse native protocol, reports the server, sinks, sources and cards,
// changes volume, mute, default devices and card profiles on request, and
// runs device policy by itself: preferred sinks and sources, a volume limit,
// a startup volume, and per-device volume and mute remembered across device
// reconnects. It reconnects with backoff when the server goes away and
// re-applies its policy when it comes back. Where hostd manages PipeWire's
// configuration directory it writes the clock quantum and rate as a
// pipewire.conf.d drop-in.
//
// It does not run or supervise the PipeWire daemons (pipewire, wireplumber,
// pipewire-pulse stay user services), does not route individual streams,
// and cannot switch Bluetooth codecs: the pulse protocol has no request for
// that, so hostd only reports the card profiles WirePlumber offers and
// switches between them.
package audio
