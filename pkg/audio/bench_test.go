package audio

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
)

// The benchmarks run hostd's way and pactl's way side by side on the same
// PipeWire stack; bench/audio/run.sh prints the ratios. With HOSTD_BIN set
// to a built hostd, they also time the CLI itself (`hostd --socket S audio
// ...`), process start included, as pactl's times include pactl's.

// benchCLI runs the hostd CLI from HOSTD_BIN against the socket.
func benchCLI(b *testing.B, sock string, args ...string) {
	bin := os.Getenv("HOSTD_BIN")
	if bin == "" {
		b.Skip("HOSTD_BIN not set")
	}
	for b.Loop() {
		cmd := exec.Command(bin, append([]string{"--socket", sock}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// BenchmarkStatus reads the full state: hostd's local API (one HTTP round
// trip on the unix socket, as `hostd audio status` makes) against
// `pactl list` (one process).
func BenchmarkStatus(b *testing.B) {
	pw := testenv.StartPipeWire(b)
	for i := range 4 {
		pw.LoadNullSink(b, fmt.Sprintf("bench_sink%d", i), testenv.NullSinkOptions{})
	}
	s := startService(b, pw, DefaultConfig())
	c := serveLocalAPI(b, s.LocalAPI())
	ctx := context.Background()
	b.Run("impl=hostd-cli", func(b *testing.B) { benchCLI(b, c.Socket, "audio", "status", "--json") })
	b.Run("impl=hostd", func(b *testing.B) {
		for b.Loop() {
			var st Status
			if err := c.Get(ctx, "/v1/audio/status", &st); err != nil || len(st.Sinks) < 4 {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=pactl", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command("pactl", "list")
			cmd.Env = pw.Env()
			if out, err := cmd.Output(); err != nil || len(out) == 0 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSetVolume sets a sink's volume: hostd's local API against
// `pactl set-sink-volume`.
func BenchmarkSetVolume(b *testing.B) {
	pw := testenv.StartPipeWire(b)
	pw.LoadNullSink(b, "bench_vol", testenv.NullSinkOptions{})
	s := startService(b, pw, DefaultConfig())
	c := serveLocalAPI(b, s.LocalAPI())
	ctx := context.Background()
	vols := []string{"30%", "60%"}
	b.Run("impl=hostd-cli", func(b *testing.B) { benchCLI(b, c.Socket, "audio", "volume", "bench_vol", "+0%") })
	b.Run("impl=hostd", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if err := c.Post(ctx, "/v1/audio/volume", VolumeRequest{Device: "bench_vol", Volume: vols[i%2]}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=pactl", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			cmd := exec.Command("pactl", "set-sink-volume", "bench_vol", vols[i%2])
			cmd.Env = pw.Env()
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPlan is the policy's pure decision on a 3-sink snapshot.
func BenchmarkPlan(b *testing.B) {
	st := lookupFixture()
	p := policy{PreferredSinks: []string{"bluez_output.*", "alsa_output.usb-*"}, Limit: 90}
	for b.Loop() {
		p.plan(st, nil, nil, true, nil)
	}
}
