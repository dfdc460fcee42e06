package containers

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

func TestDiskPressureRemovesLeastRecentlyUsedImages(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })

	const payload = 12 << 20
	spec := func(name string) testenv.ImageSpec {
		return testenv.ImageSpec{Payload: payload, Labels: map[string]string{nameLabel: name}}
	}
	// hostd follows the engine while the images are made (each import is
	// a use), then sees p1, then p3 used.
	stateDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Enable = true
	cfg.AutoPrune.HighWatermark, cfg.AutoPrune.LowWatermark = Watermark{}, Watermark{}
	h := &servicetest.Health{}
	s, _ := newTestService(t, d.Host, cfg, stateDir, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	nextHealth(t, h, false, 30*time.Second)

	d.ImportImage(t, "base/keep:1", spec("keep")) // oldest, protected by a keep pattern
	d.ImportImage(t, "p-run:1", spec("run"))      // oldest unprotected, but running
	id := map[string]string{}
	for _, n := range []string{"p1", "p2", "p3", "p4", "p5"} {
		id[n] = d.ImportImage(t, n+":1", spec(n))
	}
	d.CLI(t, "run", "-d", "--name", "p-running", "--network", "none", "p-run:1")
	testenv.WaitFor(t, 20*time.Second, func() error {
		if s.state.tracked() < 7 {
			return errString("imports not all seen")
		}
		return nil
	})
	for _, n := range []string{"p1", "p3"} {
		d.CLI(t, "run", "--rm", "--network", "none", n+":1", "/bin/busybox", "true")
	}
	testenv.WaitFor(t, 20*time.Second, func() error {
		lu := s.state.lastUse()
		if !lu[id["p3"]].After(lu[id["p1"]]) || lu[id["p1"]].IsZero() {
			return errString("uses of p1 and p3 not seen yet")
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}

	// A new hostd (as after a restart) reads the last uses from its state
	// dir and finds the disk above the high watermark.
	du, err := statDisk(d.DataRoot)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AutoPrune.HighWatermark = Watermark{Bytes: int64(du.Used) - 1}
	cfg.AutoPrune.LowWatermark = Watermark{Bytes: int64(du.Used) - 20<<20} // two images' worth
	cfg.AutoPrune.MinAge = 0
	cfg.AutoPrune.Keep = []string{"base/*"}
	cfg.AutoPrune.CheckInterval = 50 * time.Millisecond
	cfg.AutoPrune.Schedule = "yearly"
	s2, reg := newTestService(t, d.Host, cfg, stateDir, nil)
	if got := s2.state.lastUse(); !got[id["p3"]].After(got[id["p1"]]) {
		t.Fatalf("last uses not persisted: %v", got)
	}
	servicetest.Run(t, s2)
	var rep *Report
	testenv.WaitFor(t, 30*time.Second, func() error {
		rep = s2.Details().LastPrune
		if rep == nil || rep.Trigger != "disk_pressure" {
			return errString("no disk-pressure prune yet")
		}
		return nil
	})
	var removed []string
	for _, o := range rep.Objects {
		removed = append(removed, o.Name)
	}
	if want := []string{"p2:1", "p4:1"}; !slices.Equal(removed, want) {
		t.Errorf("disk pressure removed %v, want %v (least recently used first)", removed, want)
	}
	testenv.WaitFor(t, 10*time.Second, func() error {
		lu := s2.state.lastUse()
		if _, ok := lu[id["p2"]]; ok {
			return errString("delete event of p2 not seen")
		}
		if _, ok := lu[id["p3"]]; !ok {
			return errString("p3 forgotten")
		}
		return nil
	})
	inv := inventory(t, c)
	for _, n := range []string{"keep", "run", "p1", "p3", "p5"} {
		if !inv["image/"+n] {
			t.Errorf("image %s was removed", n)
		}
	}
	after, _ := statDisk(d.DataRoot)
	if cfg.AutoPrune.LowWatermark.Exceeded(after.Used, after.Size) {
		t.Errorf("disk use %d still above low watermark %s", after.Used, cfg.AutoPrune.LowWatermark)
	}
	if rep.ReclaimedBytes < 2*payload {
		t.Errorf("reclaimed %d bytes, want at least %d", rep.ReclaimedBytes, 2*payload)
	}
	for name, want := range map[string]float64{
		`hostd_containers_removed_objects_total{kind="image"}`:               2,
		`hostd_containers_engine_up`:                                         1,
		`hostd_containers_prunes_total{result="ok",trigger="disk_pressure"}`: 1,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, "hostd_containers_disk_used_bytes"); got <= 0 {
		t.Errorf("disk used metric %v", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// TestDiskPressureLeavesProtectedImages: above the high watermark with
// only protected images, nothing is removed and no prune is recorded.
func TestDiskPressureLeavesProtectedImages(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })
	d.ImportImage(t, "q-running:1", testenv.ImageSpec{})
	d.ImportImage(t, "q-stopped:1", testenv.ImageSpec{})
	d.ImportImage(t, "q-fresh:1", testenv.ImageSpec{})
	d.ImportImage(t, "base/q-kept:1", testenv.ImageSpec{})
	d.ImportImage(t, "q-labelled:1", testenv.ImageSpec{Labels: map[string]string{"hostd.keep": "true"}})
	d.CLI(t, "run", "-d", "--name", "q-running", "--network", "none", "q-running:1")
	d.CLI(t, "create", "--name", "q-stopped", "--network", "none", "q-stopped:1")
	before := inventory(t, c)

	cfg := DefaultConfig()
	cfg.RootDir = d.DataRoot
	cfg.AutoPrune.HighWatermark, cfg.AutoPrune.LowWatermark = Watermark{Bytes: 2}, Watermark{Bytes: 1}
	cfg.AutoPrune.Keep = []string{"base/*"}
	cfg.AutoPrune.MinAge = time.Hour // q-fresh was just made
	s, reg := newTestService(t, d.Host, cfg, "", nil)
	for range 2 {
		rep, err := s.RelievePressure(context.Background())
		if err != nil || rep != nil {
			t.Fatalf("RelievePressure = %+v, %v; want nothing to do", rep, err)
		}
	}
	if got := inventory(t, c); len(got) != len(before) {
		t.Errorf("objects before %v, after %v", sorted(before), sorted(got))
	}
	if s.Details().LastPrune != nil {
		t.Errorf("an empty disk-pressure run was recorded as a prune")
	}
	if got := metricValue(t, reg, "hostd_containers_disk_used_bytes"); got <= 2 {
		t.Errorf("disk used metric %v", got)
	}
}
