package audio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestPipeWire runs the service against one real PipeWire stack; the
// subtests share it and each uses its own sinks and its own Service.
func TestPipeWire(t *testing.T) {
	pw := testenv.StartPipeWire(t)
	t.Run("status", func(t *testing.T) { testStatus(t, pw) })
	t.Run("controls", func(t *testing.T) { testControls(t, pw) })
	t.Run("bad requests change nothing", func(t *testing.T) { testBadRequests(t, pw) })
	t.Run("preferred sink", func(t *testing.T) { testPreferred(t, pw) })
	t.Run("volume limit and startup volume", func(t *testing.T) { testLimit(t, pw) })
	t.Run("remember", func(t *testing.T) { testRemember(t, pw) })
	t.Run("local api", func(t *testing.T) { testLocalAPI(t, pw) })
	t.Run("drop-in", func(t *testing.T) { testDropIn(t, pw) })
	// Last: it kills pipewire-pulse, which drops every sink loaded above.
	t.Run("reconnect", func(t *testing.T) { testReconnect(t, pw) })
}

func testStatus(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "st_speaker", testenv.NullSinkOptions{Description: "Status Speaker"})
	pw.LoadNullSink(t, "bluez_output.00_11_22_33_44_55.1", testenv.NullSinkOptions{
		Description: "Test Headset", Properties: map[string]string{"device.bus": "bluetooth"}})
	pw.Pactl(t, "set-sink-volume", "st_speaker", "35%")
	pw.Pactl(t, "set-sink-mute", "st_speaker", "1")
	clock := servicetest.NewFakeClock(time.Now())
	s := startService(t, pw, DefaultConfig(), func(s *Service) { s.clock = clock })

	st, err := s.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Connected || !strings.Contains(st.Server, "PulseAudio") || st.ServerVersion == "" {
		t.Fatalf("server = %q %q connected=%v", st.Server, st.ServerVersion, st.Connected)
	}
	if want := pw.DefaultSink(t); st.DefaultSink != want {
		t.Errorf("default sink %q, pactl says %q", st.DefaultSink, want)
	}
	d := st.Find(KindSink, "st_speaker")
	if d == nil {
		t.Fatalf("st_speaker not in %+v", st.Sinks)
	}
	if d.Description != "Status Speaker" || d.Volume != 35 || !d.Mute || len(d.Channels) != 2 ||
		d.Channels[0].Position != "front-left" || d.Channels[0].Percent != 35 || d.Bluetooth {
		t.Errorf("st_speaker = %+v", d)
	}
	bt := st.Find(KindSink, "bluez_output.00_11_22_33_44_55.1")
	if bt == nil || !bt.Bluetooth {
		t.Errorf("headset not marked Bluetooth: %+v", bt)
	}
	mon := st.Find(KindSource, "st_speaker.monitor")
	if mon == nil || !mon.Monitor || mon.Description != "Monitor of Status Speaker" {
		t.Errorf("monitor source = %+v", mon)
	}
	if st.Quantum == nil || st.Quantum.Effective != 1024 || st.Quantum.Rate != 48000 {
		t.Errorf("quantum = %+v, want PipeWire's default 1024 at 48000 Hz", st.Quantum)
	}
	wantMetric(t, s, "hostd_audio_connected", nil, 1)
	wantMetric(t, s, "hostd_audio_volume_ratio", map[string]string{"kind": "sink", "device": "st_speaker"}, 0.35)
	wantMetric(t, s, "hostd_audio_muted", map[string]string{"kind": "sink", "device": "st_speaker"}, 1)
	wantMetric(t, s, "hostd_audio_muted", map[string]string{"kind": "sink", "device": "bluez_output.00_11_22_33_44_55.1"}, 0)
	wantMetric(t, s, "hostd_audio_devices", map[string]string{"kind": "sink"}, float64(len(st.Sinks)))
	wantMetric(t, s, "hostd_audio_devices", map[string]string{"kind": "card"}, 0)
	wantMetric(t, s, "hostd_audio_quantum_samples", nil, 1024)
	if _, err := metricValue(s, "hostd_audio_volume_ratio", map[string]string{"kind": "source", "device": "st_speaker.monitor"}); err == nil {
		t.Error("monitor sources are exported")
	}
	// A quantum forced at run time shows once the reading is stale.
	pw.Tool(t, "pw-metadata", "-n", "settings", "0", "clock.force-quantum", "64")
	t.Cleanup(func() { pw.Tool(t, "pw-metadata", "-n", "settings", "0", "clock.force-quantum", "0") })
	if cur, _ := s.Current(context.Background()); cur.Quantum == nil || cur.Quantum.Effective != 1024 {
		t.Errorf("fresh reading replaced early: %+v", cur.Quantum)
	}
	clock.Advance(quantumMaxAge + time.Second)
	if cur, _ := s.Current(context.Background()); cur.Quantum == nil || cur.Quantum.Effective != 64 {
		t.Errorf("quantum after force-quantum 64 = %+v", cur.Quantum)
	}
	sum := s.Status().Summary
	for _, want := range []string{"PulseAudio", "sinks", "quantum 64"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q lacks %q", sum, want)
		}
	}
}

func testControls(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "ctl_a", testenv.NullSinkOptions{Description: "Kitchen Speaker"})
	idx := pw.LoadNullSink(t, "ctl_b", testenv.NullSinkOptions{Description: "Desk DAC"})
	_ = idx
	s := startService(t, pw, DefaultConfig())
	ctx := context.Background()
	st, _ := s.Current(ctx)
	b := st.Find(KindSink, "ctl_b")
	if b == nil {
		t.Fatal("ctl_b not listed")
	}

	steps := []struct {
		name   string
		do     func() (*Device, error)
		check  []string // pactl command
		want   string
		device string
	}{
		{"volume by name", func() (*Device, error) { return s.SetVolume(ctx, KindSink, "ctl_a", "40%") }, nil, "40%", "ctl_a"},
		{"volume up", func() (*Device, error) { return s.SetVolume(ctx, KindSink, "ctl_a", "+5%") }, nil, "45%", "ctl_a"},
		{"volume down", func() (*Device, error) { return s.SetVolume(ctx, KindSink, "ctl_a", "-15%") }, nil, "30%", "ctl_a"},
		{"volume by description part", func() (*Device, error) { return s.SetVolume(ctx, KindSink, "kitchen", "55%") }, nil, "55%", "ctl_a"},
		{"volume by index", func() (*Device, error) { return s.SetVolume(ctx, KindSink, fmt.Sprint(b.Index), "20%") }, nil, "20%", "ctl_b"},
		{"volume of a source", func() (*Device, error) { return s.SetVolume(ctx, KindSource, "ctl_b.monitor", "70%") }, nil, "70%", "ctl_b.monitor"},
		{"mute on", func() (*Device, error) { return s.SetMute(ctx, KindSink, "ctl_a", "on") }, []string{"get-sink-mute", "ctl_a"}, "Mute: yes", "ctl_a"},
		{"mute toggle", func() (*Device, error) { return s.SetMute(ctx, KindSink, "ctl_a", "toggle") }, []string{"get-sink-mute", "ctl_a"}, "Mute: no", "ctl_a"},
		{"mute toggle back", func() (*Device, error) { return s.SetMute(ctx, KindSink, "Kitchen", "toggle") }, []string{"get-sink-mute", "ctl_a"}, "Mute: yes", "ctl_a"},
		{"mute off", func() (*Device, error) { return s.SetMute(ctx, KindSink, "ctl_a", "off") }, []string{"get-sink-mute", "ctl_a"}, "Mute: no", "ctl_a"},
		{"default sink", func() (*Device, error) { return s.SetDefault(ctx, KindSink, "Desk DAC") }, []string{"get-default-sink"}, "ctl_b", "ctl_b"},
		{"default sink again", func() (*Device, error) { return s.SetDefault(ctx, KindSink, "ctl_a") }, []string{"get-default-sink"}, "ctl_a", "ctl_a"},
		{"default source", func() (*Device, error) { return s.SetDefault(ctx, KindSource, "ctl_b.monitor") }, []string{"get-default-source"}, "ctl_b.monitor", "ctl_b.monitor"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			d, err := st.do()
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != st.device {
				t.Errorf("changed %s, want %s", d.Name, st.device)
			}
			if st.check == nil {
				kind := KindSink
				if strings.HasSuffix(st.device, ".monitor") {
					kind = KindSource
				}
				waitVolume(t, pw, kind, st.device, st.want)
				if fmt.Sprintf("%d%%", d.Volume) != st.want {
					t.Errorf("reply says %d%%, want %s", d.Volume, st.want)
				}
				return
			}
			if got := pw.Pactl(t, st.check...); got != st.want {
				t.Errorf("pactl %v = %q, want %q", st.check, got, st.want)
			}
		})
	}
}

// pactlState is what pactl tells about every sink's and source's name,
// volume and mute and about the defaults, for checking that a failed
// request changed nothing.
func pactlState(t *testing.T, pw *testenv.PipeWire) string {
	t.Helper()
	var b strings.Builder
	all := pw.Pactl(t, "list", "sinks") + "\n" + pw.Pactl(t, "list", "sources") + "\n" + pw.Pactl(t, "info")
	for _, line := range strings.Split(all, "\n") {
		line = strings.TrimSpace(line)
		for _, p := range []string{"Name:", "Mute:", "Volume:", "Default Sink:", "Default Source:"} {
			if strings.HasPrefix(line, p) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func testBadRequests(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "bad_a", testenv.NullSinkOptions{Description: "Twin Speaker Left"})
	pw.LoadNullSink(t, "bad_b", testenv.NullSinkOptions{Description: "Twin Speaker Right"})
	pw.Pactl(t, "set-sink-volume", "bad_a", "42%")
	s := startService(t, pw, DefaultConfig())
	ctx := context.Background()
	before := pactlState(t, pw)
	tests := []struct {
		name    string
		do      func() error
		wantErr error
		msg     string
	}{
		{"unknown sink", func() error { _, err := s.SetVolume(ctx, KindSink, "no_such_sink", "40%"); return err }, ErrNoDevice, `no sink named "no_such_sink"`},
		{"unknown index", func() error { _, err := s.SetMute(ctx, KindSink, "#999999", "on"); return err }, ErrNoDevice, "no sink with index 999999"},
		{"ambiguous description", func() error { _, err := s.SetVolume(ctx, KindSink, "twin speaker", "40%"); return err }, ErrAmbiguous, "bad_a, bad_b"},
		{"volume without percent", func() error { _, err := s.SetVolume(ctx, KindSink, "bad_a", "40"); return err }, ErrBadVolume, "missing %"},
		{"volume not a number", func() error { _, err := s.SetVolume(ctx, KindSink, "bad_a", "loud%"); return err }, ErrBadVolume, "not a number"},
		{"volume too high", func() error { _, err := s.SetVolume(ctx, KindSink, "bad_a", "900%"); return err }, ErrBadVolume, "above 200%"},
		{"bad volume on unknown sink", func() error { _, err := s.SetVolume(ctx, KindSink, "nope", "+x%"); return err }, ErrBadVolume, "not a number"},
		{"bad mute", func() error { _, err := s.SetMute(ctx, KindSink, "bad_a", "maybe"); return err }, ErrBadRequest, "want on, off or toggle"},
		{"default unknown source", func() error { _, err := s.SetDefault(ctx, KindSource, "nope"); return err }, ErrNoDevice, `no source named "nope"`},
		{"default empty", func() error { _, err := s.SetDefault(ctx, KindSink, ""); return err }, ErrBadRequest, "no sink given"},
		{"profile of unknown card", func() error { _, err := s.SetProfile(ctx, "no_card", "off"); return err }, ErrNoDevice, `no card matches "no_card"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
	if after := pactlState(t, pw); after != before {
		t.Errorf("failed requests changed the server:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func testPreferred(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "pref_internal", testenv.NullSinkOptions{})
	pw.Pactl(t, "set-default-sink", "pref_internal")
	// Without hostd a new sink does not take over a configured default:
	// what follows is hostd's doing, not WirePlumber's.
	pw.LoadNullSink(t, "pref_other", testenv.NullSinkOptions{})
	waitPactl(t, pw, 2*time.Second, "pref_internal", "get-default-sink")

	cfg := DefaultConfig()
	cfg.PreferredSinks = []string{"bluez_output.pref*", "pref_usb_*", "pref_internal"}
	cfg.PreferredSources = []string{"pref_usb_*.monitor"}
	s := startService(t, pw, cfg)
	waitPactl(t, pw, 2*time.Second, "pref_internal", "get-default-sink")

	start := time.Now()
	pw.LoadNullSink(t, "pref_usb_dac", testenv.NullSinkOptions{})
	waitPactl(t, pw, time.Second, "pref_usb_dac", "get-default-sink")
	t.Logf("preferred sink became default %v after it was listed", time.Since(start))
	waitPactl(t, pw, time.Second, "pref_usb_dac.monitor", "get-default-source")

	// A lower-ranked newcomer does not take over.
	pw.LoadNullSink(t, "pref_usb_second", testenv.NullSinkOptions{})
	pw.Pactl(t, "load-module", "module-null-sink", "sink_name=pref_other2")
	bt := pw.LoadNullSink(t, "bluez_output.pref_headset", testenv.NullSinkOptions{Properties: map[string]string{"device.bus": "bluetooth"}})
	waitPactl(t, pw, time.Second, "bluez_output.pref_headset", "get-default-sink")
	// The headset goes: back to the USB DAC.
	pw.Pactl(t, "unload-module", bt)
	waitPactl(t, pw, time.Second, "pref_usb_dac", "get-default-sink")

	testenv.WaitFor(t, time.Second, func() error {
		if st := s.Snapshot(); st.DefaultSink != "pref_usb_dac" {
			return fmt.Errorf("status says default sink %q", st.DefaultSink)
		}
		return nil
	})
}

func testLimit(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "lim_a", testenv.NullSinkOptions{})
	pw.Pactl(t, "set-sink-volume", "lim_a", "150%")
	cfg := DefaultConfig()
	cfg.Remember = false
	cfg.VolumeLimit = 80
	startup := Percent(30)
	cfg.StartupVolume = &startup
	s := startService(t, pw, cfg)
	// At connect the startup volume applies to every sink hostd meets.
	waitVolume(t, pw, KindSink, "lim_a", "30%")

	// Anyone raising the volume above the limit is pulled back.
	pw.Pactl(t, "set-sink-volume", "lim_a", "95%")
	waitVolume(t, pw, KindSink, "lim_a", "80%")
	wantMetric(t, s, "hostd_audio_policy_actions_total", map[string]string{"reason": "limit"}, 1)
	pw.Pactl(t, "set-sink-volume", "lim_a", "70%", "120%")
	testenv.WaitFor(t, 5*time.Second, func() error {
		if got := pactlVolume(t, pw, KindSink, "lim_a"); strings.Join(got, " ") != "70% 80%" {
			return fmt.Errorf("volume %v, want 70%% 80%%", got)
		}
		return nil
	})
	// Requests through hostd stop at the limit too.
	d, err := s.SetVolume(context.Background(), KindSink, "lim_a", "+50%")
	if err != nil || d.Volume != 80 {
		t.Fatalf("SetVolume +50%% = %+v, %v; want 80%%", d, err)
	}
	// A new sink starts at the startup volume.
	pw.LoadNullSink(t, "lim_new", testenv.NullSinkOptions{})
	waitVolume(t, pw, KindSink, "lim_new", "30%")
}

func testRemember(t *testing.T, pw *testenv.PipeWire) {
	cfg := DefaultConfig()
	s := startService(t, pw, cfg)
	mod := pw.LoadNullSink(t, "mem_a", testenv.NullSinkOptions{})
	pw.Pactl(t, "set-sink-volume", "mem_a", "33%")
	pw.Pactl(t, "set-sink-mute", "mem_a", "1")
	file := filepath.Join(s.dir, memoryFile)
	testenv.WaitFor(t, 5*time.Second, func() error {
		r, ok := s.mem.get(KindSink, "mem_a")
		if !ok || roundPercent(maxVolume(r.Volumes)) != 33 || !r.Mute {
			return fmt.Errorf("remembered %+v", r)
		}
		return nil
	})
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), `"sink:mem_a"`) {
		t.Fatalf("state file: %v %s", err, data)
	}
	// The device goes and comes back at 100%, unmuted: hostd restores it.
	pw.Pactl(t, "unload-module", mod)
	pw.LoadNullSink(t, "mem_a", testenv.NullSinkOptions{})
	waitVolume(t, pw, KindSink, "mem_a", "33%")
	waitPactl(t, pw, 5*time.Second, "Mute: yes", "get-sink-mute", "mem_a")
}

func testReconnect(t *testing.T, pw *testenv.PipeWire) {
	cfg := DefaultConfig()
	cfg.VolumeLimit = 60
	cfg.PreferredSinks = []string{"rc_pref*"}
	// Retry every 20ms instead of with the real backoff, whose pauses
	// are checked on a fake clock without a server (TestServeWithoutServer).
	s := startService(t, pw, cfg, func(s *Service) {
		s.retry = service.Backoff{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	})

	pw.KillPulse(t)
	degraded := s.waitHealth(t, servicetest.IsDegraded(""))
	st := s.Snapshot()
	if st.Connected || st.Error == "" || !strings.Contains(s.Status().Summary, "disconnected") {
		t.Errorf("while away: %+v summary %q", st, s.Status().Summary)
	}
	t.Logf("%v", degraded)
	// Controls fail cleanly while the server is away.
	if _, err := s.SetVolume(context.Background(), KindSink, "", "10%"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SetVolume while away: %v, want ErrNotConnected", err)
	}
	if cur, err := s.Current(context.Background()); err != nil || cur.Connected {
		t.Errorf("Current while away = %+v, %v", cur, err)
	}
	wantMetric(t, s, "hostd_audio_connected", nil, 0)
	wantMetric(t, s, "hostd_audio_reconnects_total", nil, 0)

	pw.StartPulse(t)
	s.waitHealth(t, servicetest.IsReady)
	if st := s.Snapshot(); st.Reconnects != 1 || !st.Connected {
		t.Errorf("after restart: connected=%v reconnects=%d", st.Connected, st.Reconnects)
	}
	wantMetric(t, s, "hostd_audio_reconnects_total", nil, 1)
	// The policy runs on the new connection's events.
	pw.LoadNullSink(t, "rc_pref_sink", testenv.NullSinkOptions{})
	waitPactl(t, pw, time.Second, "rc_pref_sink", "get-default-sink")
	pw.Pactl(t, "set-sink-volume", "rc_pref_sink", "100%")
	waitVolume(t, pw, KindSink, "rc_pref_sink", "60%")
}

func testDropIn(t *testing.T, pw *testenv.PipeWire) {
	cfg := DefaultConfig()
	cfg.ConfigDir = t.TempDir()
	cfg.Quantum = 256
	cfg.Rate = 48000
	s := startService(t, pw, cfg)
	path := filepath.Join(cfg.ConfigDir, "pipewire.conf.d", dropInName)
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "default.clock.quantum = 256") {
		t.Fatalf("drop-in: %v\n%s", err, data)
	}
	if st := s.Snapshot(); st.DropIn != path || st.DropInError != "" {
		t.Errorf("status drop-in %q %q", st.DropIn, st.DropInError)
	}

	// A config dir that cannot be written: the error shows, control works.
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.ConfigDir = blocked
	s2 := startService(t, pw, cfg)
	if sum := s2.Status().Summary; !strings.Contains(sum, "drop-in not written") || !strings.Contains(sum, blocked) {
		t.Errorf("summary %q does not report the drop-in failure", sum)
	}
	if _, err := s2.Current(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestServeWithoutServer: hostd starts before PipeWire. It stays up,
// degraded with the reason, retries with growing pauses (100ms doubling up
// to 5s, timed on a fake clock), and controls fail cleanly.
func TestServeWithoutServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pulse", "native")
	health := &servicetest.Health{}
	clock := servicetest.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfig()
	cfg.Server = "unix:" + sock
	s, err := newService(service.Env{StateDir: t.TempDir(), Health: health, Clock: clock}, cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		// Serve waits for its retry on the clock: let exactly that pass.
		if err := clock.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		at, _ := clock.NextTimer()
		if d := at.Sub(clock.Now()); d != w {
			t.Errorf("pause %d = %v, want %v", i, d, w)
		}
		clock.Set(at)
	}
	if rep, ok := health.Last(); !ok || !servicetest.IsDegraded(sock)(rep) {
		t.Errorf("health = %v; want degraded naming %s", rep, sock)
	}
	if sum := s.Status().Summary; !strings.HasPrefix(sum, "disconnected: connect to unix:"+sock) {
		t.Errorf("summary %q", sum)
	}
	if _, err := s.SetMute(ctx, KindSink, "", "on"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SetMute: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after cancel", err)
	}
}
