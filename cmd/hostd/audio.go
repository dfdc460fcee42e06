package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/pkg/audio"
)

func newAudioCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audio",
		Short: "Inspect and control the audio service",
		Long: `Show and change PipeWire's sinks, sources and cards through hostd's audio
service: volume, mute, default devices and card profiles.

Devices are named by their name (alsa_output.usb-...), their index
("3" or "#3"), or a part of their description that only one device has
("topping"). Without a device, volume and mute act on the default sink.`,
	}
	cmd.AddCommand(
		newAudioStatusCmd(g),
		newAudioVolumeCmd(g),
		newAudioMuteCmd(g),
		newAudioDefaultCmd(g),
		newAudioProfileCmd(g),
	)
	return cmd
}

func newAudioStatusCmd(g *globals) *cobra.Command {
	var monitors bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the audio server, sinks, sources and cards",
		Long: `Show the audio server, its default sink and source, every sink and source
with volume, mute, state and port, and every card with its profiles.

Exit status: 0 when hostd is connected to the audio server, 1 when not,
3 when the daemon is not running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st audio.Status
			raw, err := g.client().Raw(cmd.Context(), "GET", api.RouteAudioStatus, nil)
			if err != nil {
				return audioErr(err)
			}
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("decode audio status: %w", err)
			}
			if g.json {
				_, err = cmd.OutOrStdout().Write(raw)
			} else {
				printAudioStatus(cmd, &st, monitors)
			}
			if err != nil {
				return err
			}
			if !st.Connected {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&monitors, "monitors", false, "also list monitor sources")
	return cmd
}

// audioNegativeVolume matches a "-5%" argument, which the flag parser would take
// for a flag.
var audioNegativeVolume = regexp.MustCompile(`^-[0-9.]+%$`)

func newAudioVolumeCmd(g *globals) *cobra.Command {
	var source bool
	cmd := &cobra.Command{
		Use:   "volume [DEVICE] VOLUME",
		Short: "Set a sink's volume: 40%, +5% or -5%",
		Long: `Set the volume of a sink (the default sink without DEVICE), or of a source
with --source. VOLUME is absolute (40%) or a step (+5%, -5%); sinks never
go above the configured volume_limit.`,
		Example: `  hostd audio volume 40%
  hostd audio volume -5%
  hostd audio volume topping +5%
  hostd audio volume --source alsa_input.usb-mic 80%`,
		// Flags are parsed below: "-5%" must reach the command as a volume.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := audioParseArgs(cmd, args)
			if err != nil || args == nil {
				return err
			}
			if len(args) < 1 || len(args) > 2 {
				return usageError(cmd, fmt.Errorf("want [DEVICE] VOLUME, got %d arguments", len(args)))
			}
			req := audio.VolumeRequest{Kind: audioKind(source), Volume: args[len(args)-1]}
			if len(args) == 2 {
				req.Device = args[0]
			}
			// The daemon checks too; checking here saves a round trip.
			if _, err := audio.ParseVolume(req.Volume); err != nil {
				return err
			}
			return audioPostDevice(cmd, g, api.RouteAudioVolume, req)
		},
	}
	cmd.Flags().BoolVar(&source, "source", false, "DEVICE is a source (microphone), not a sink")
	return cmd
}

// audioParseArgs parses the command's flags (with persistent ones)
// from args while passing "-5%" through as an argument. It returns nil
// args after printing help for -h/--help.
func audioParseArgs(cmd *cobra.Command, args []string) ([]string, error) {
	const mark = "\x00volume:"
	masked := make([]string, len(args))
	for i, a := range args {
		masked[i] = a
		if audioNegativeVolume.MatchString(a) {
			masked[i] = mark + a
		}
	}
	// ParseFlags is a no-op while DisableFlagParsing is set.
	cmd.DisableFlagParsing = false
	err := cmd.ParseFlags(masked)
	cmd.DisableFlagParsing = true
	if err != nil {
		return nil, usageError(cmd, err)
	}
	if help, _ := cmd.Flags().GetBool("help"); help {
		return nil, cmd.Help()
	}
	out := []string{}
	for _, a := range cmd.Flags().Args() {
		out = append(out, strings.TrimPrefix(a, mark))
	}
	return out, nil
}

func newAudioMuteCmd(g *globals) *cobra.Command {
	var source bool
	cmd := &cobra.Command{
		Use:   "mute [DEVICE] on|off|toggle",
		Short: "Mute, unmute or toggle a sink (the default sink without DEVICE)",
		Example: `  hostd audio mute toggle
  hostd audio mute alsa_output.usb-Topping.analog-stereo on
  hostd audio mute --source mic off`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := audio.MuteRequest{Kind: audioKind(source), Mute: args[len(args)-1]}
			if len(args) == 2 {
				req.Device = args[0]
			}
			if _, err := audio.ParseMute(req.Mute); err != nil {
				return err
			}
			return audioPostDevice(cmd, g, api.RouteAudioMute, req)
		},
	}
	cmd.Flags().BoolVar(&source, "source", false, "DEVICE is a source (microphone), not a sink")
	return cmd
}

func newAudioDefaultCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "default sink|source DEVICE",
		Short: "Make a device the default sink or source",
		Long: `Make a device the default sink or source. With preferred_sinks or
preferred_sources configured, the choice stands until a device comes or
goes; then the preferences choose again.`,
		Example: `  hostd audio default sink topping
  hostd audio default source alsa_input.usb-mic`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := audio.ParseKind(args[0])
			if err != nil || args[0] == "" {
				return usageError(cmd, fmt.Errorf("want sink or source, got %q", args[0]))
			}
			return audioPostDevice(cmd, g, api.RouteAudioDefault, audio.DefaultRequest{Kind: string(kind), Device: args[1]})
		},
	}
}

func newAudioProfileCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "profile CARD PROFILE",
		Short: "Switch a card to one of its profiles",
		Long: `Switch a card to one of its profiles (see hostd audio status). For a
Bluetooth headset this chooses between high-quality playback (a2dp-sink)
and the headset profile with microphone (headset-head-unit); the codec
within a profile is WirePlumber's choice, not hostd's.`,
		Example: `  hostd audio profile bluez_card.00_11_22_33_44_55 a2dp-sink
  hostd audio profile "Built-in" output:analog-stereo+input:analog-stereo`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c audio.Card
			raw, err := g.client().Raw(cmd.Context(), "POST", api.RouteAudioProfile, audio.ProfileRequest{Card: args[0], Profile: args[1]})
			if err != nil {
				return audioErr(err)
			}
			if g.json {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("decode reply: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "card %s: profile %s\n", c.Name, c.ActiveProfile)
			return nil
		},
	}
}

func audioKind(source bool) string {
	if source {
		return string(audio.KindSource)
	}
	return string(audio.KindSink)
}

// audioPostDevice sends a device request and prints the device as changed.
func audioPostDevice(cmd *cobra.Command, g *globals, path string, req any) error {
	raw, err := g.client().Raw(cmd.Context(), "POST", path, req)
	if err != nil {
		return audioErr(err)
	}
	if g.json {
		_, err := cmd.OutOrStdout().Write(raw)
		return err
	}
	var d audio.Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	printAudioDevice(cmd.OutOrStdout(), &d)
	return nil
}

// audioErr maps "daemon not running" to exit status 3.
func audioErr(err error) error {
	if errors.Is(err, api.ErrNotRunning) {
		return &exitError{code: 3, err: err}
	}
	var he *api.HTTPError
	if errors.As(err, &he) && he.Code == 404 && strings.Contains(he.Msg, "404 page not found") {
		return fmt.Errorf("the audio service is not enabled (audio.enable in the config)")
	}
	return err
}

func printAudioDevice(w io.Writer, d *audio.Device) {
	mute := "no"
	if d.Mute {
		mute = "yes"
	}
	ch := make([]string, len(d.Channels))
	for i, c := range d.Channels {
		ch[i] = fmt.Sprintf("%s %d%%", c.Position, c.Percent)
	}
	def := ""
	if d.Default {
		def = ", default"
	}
	fmt.Fprintf(w, "%s %s: volume %d%% (%s), muted %s%s\n", d.Kind, d.Name, d.Volume, strings.Join(ch, ", "), mute, def)
}

func printAudioStatus(cmd *cobra.Command, st *audio.Status, monitors bool) {
	out := cmd.OutOrStdout()
	if !st.Connected {
		fmt.Fprintf(out, "audio server %s: %s\n", st.Address, st.Summary())
		return
	}
	tw := table(cmd)
	fmt.Fprintf(tw, "Server:\t%s %s (%s)\n", st.Server, st.ServerVersion, st.Address)
	fmt.Fprintf(tw, "Default sink:\t%s\n", st.DefaultSink)
	fmt.Fprintf(tw, "Default source:\t%s\n", st.DefaultSource)
	if st.Quantum != nil {
		fmt.Fprintf(tw, "Quantum:\t%d samples at %d Hz (min %d, max %d)\n", st.Quantum.Effective, st.Quantum.Rate, st.Quantum.Min, st.Quantum.Max)
	} else {
		fmt.Fprintf(tw, "Quantum:\tunknown\n")
	}
	if st.VolumeLimit > 0 {
		fmt.Fprintf(tw, "Volume limit:\t%g%%\n", st.VolumeLimit)
	}
	fmt.Fprintf(tw, "Reconnects:\t%d\n", st.Reconnects)
	tw.Flush()

	for _, kind := range []audio.Kind{audio.KindSink, audio.KindSource} {
		devs := st.Sinks
		if kind == audio.KindSource {
			devs = st.Sources
		}
		fmt.Fprintf(out, "\n%sS\n", strings.ToUpper(string(kind)))
		tw := table(cmd)
		fmt.Fprintln(tw, "\tINDEX\tNAME\tDESCRIPTION\tVOLUME\tMUTE\tSTATE\tPORT")
		for _, d := range devs {
			if d.Monitor && !monitors {
				continue
			}
			mark := ""
			if d.Default {
				mark = "*"
			}
			name := d.Name
			if d.Bluetooth {
				name += " (bluetooth)"
			}
			mute := "no"
			if d.Mute {
				mute = "yes"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d%%\t%s\t%s\t%s\n", mark, d.Index, name, d.Description, d.Volume, mute, d.State, audioDash(d.ActivePort))
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\nCARDS\n")
	tw = table(cmd)
	fmt.Fprintln(tw, "INDEX\tNAME\tDESCRIPTION\tPROFILE\tOTHER PROFILES")
	for _, c := range st.Cards {
		var others []string
		for _, p := range c.Profiles {
			if p.Name != c.ActiveProfile && p.Available {
				others = append(others, p.Name)
			}
		}
		name := c.Name
		if c.Bluetooth {
			name += " (bluetooth)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.Index, name, c.Description, c.ActiveProfile, audioDash(strings.Join(others, ", ")))
	}
	tw.Flush()
}

func audioDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
