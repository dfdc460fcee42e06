package audio

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/testenv"
)

// serveLocalAPI serves h on a unix socket the way the daemon does and
// returns a client for it.
func serveLocalAPI(t testing.TB, h http.Handler) *api.Client {
	t.Helper()
	sock := filepath.Join(testenv.TempDir(t), "hostd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnContext: api.ConnContext}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return api.NewClient(sock)
}

func testLocalAPI(t *testing.T, pw *testenv.PipeWire) {
	pw.LoadNullSink(t, "api_sink", testenv.NullSinkOptions{Description: "API Speaker"})
	s := startService(t, pw, DefaultConfig())
	c := serveLocalAPI(t, s.LocalAPI())
	ctx := context.Background()

	var st Status
	if err := c.Get(ctx, "/v1/audio/status", &st); err != nil {
		t.Fatal(err)
	}
	if !st.Connected || st.Find(KindSink, "api_sink") == nil {
		t.Fatalf("status = %+v", st)
	}

	var d Device
	if err := c.Post(ctx, "/v1/audio/volume", VolumeRequest{Device: "API Speaker", Volume: "25%"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "api_sink" || d.Volume != 25 {
		t.Errorf("volume reply = %+v", d)
	}
	waitVolume(t, pw, KindSink, "api_sink", "25%")
	if err := c.Post(ctx, "/v1/audio/mute", MuteRequest{Device: "api_sink", Mute: "toggle"}, &d); err != nil || !d.Mute {
		t.Fatalf("mute: %+v %v", d, err)
	}
	if got := pw.Pactl(t, "get-sink-mute", "api_sink"); got != "Mute: yes" {
		t.Errorf("pactl: %s", got)
	}
	if err := c.Post(ctx, "/v1/audio/default", DefaultRequest{Kind: "sink", Device: "api_sink"}, &d); err != nil {
		t.Fatal(err)
	}
	if got := pw.DefaultSink(t); got != "api_sink" {
		t.Errorf("default sink %q", got)
	}

	before := pactlState(t, pw)
	errs := []struct {
		path string
		body any
		code int
		msg  string
	}{
		{"/v1/audio/volume", VolumeRequest{Device: "api_sink", Volume: "lots"}, 400, "missing %"},
		{"/v1/audio/volume", VolumeRequest{Device: "nope", Volume: "10%"}, 404, `no sink named "nope"`},
		{"/v1/audio/volume", VolumeRequest{Kind: "speaker", Volume: "10%"}, 400, "want sink or source"},
		{"/v1/audio/volume", map[string]string{"volume": "10%", "sinkk": "x"}, 400, "unknown field"},
		{"/v1/audio/mute", MuteRequest{Mute: "sometimes"}, 400, "want on, off or toggle"},
		{"/v1/audio/default", DefaultRequest{Kind: "source", Device: "nope"}, 404, "no source named"},
		{"/v1/audio/profile", ProfileRequest{Card: "nope", Profile: "off"}, 404, "no card"},
	}
	for _, e := range errs {
		err := c.Post(ctx, e.path, e.body, nil)
		var he *api.HTTPError
		if !errors.As(err, &he) || he.Code != e.code || !strings.Contains(he.Msg, e.msg) {
			t.Errorf("POST %s %+v: %v, want %d %q", e.path, e.body, err, e.code, e.msg)
		}
	}
	if after := pactlState(t, pw); after != before {
		t.Errorf("failed requests changed the server")
	}
}
