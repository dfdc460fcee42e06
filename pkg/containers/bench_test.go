package containers

import (
	"fmt"
	"testing"
	"time"
)

// bigSnapshot is a busy host: n containers (a third running), 2n images
// (every fourth dangling), n/4 networks, n volumes.
func bigSnapshot(n int) snapshot {
	var s snapshot
	for i := range 2 * n {
		img := imgInfo{ID: fmt.Sprintf("i%d", i), Created: t0.Add(-time.Duration(i) * time.Hour), Size: 1 << 20}
		if i%4 != 0 {
			img.Tags = []string{fmt.Sprintf("repo/app%d:v%d", i%50, i)}
		}
		s.images = append(s.images, img)
	}
	states := []string{"running", "exited", "created"}
	for i := range n {
		s.containers = append(s.containers, ctrInfo{ID: fmt.Sprintf("c%d", i), ImageID: fmt.Sprintf("i%d", i*2), State: states[i%3],
			Created: t0.Add(-time.Duration(i) * time.Minute), Labels: map[string]string{"app": fmt.Sprint(i % 7)}, Volumes: []string{fmt.Sprintf("v%d", i)}})
		s.volumes = append(s.volumes, volInfo{Name: fmt.Sprintf("v%d", i*2), Driver: "local", Anonymous: i%2 == 0})
	}
	for i := range n / 4 {
		s.networks = append(s.networks, netInfo{ID: fmt.Sprintf("n%d", i), Name: fmt.Sprintf("net%d", i), Scope: "local", Endpoints: i % 2})
	}
	return s
}

func BenchmarkPlanPrune(b *testing.B) {
	s := bigSnapshot(1000)
	p := DefaultConfig().AutoPrune
	p.Images.All = true
	p.Volumes.Enable = true
	p.Containers.Labels = []string{"!app=3"}
	b.ReportAllocs()
	for b.Loop() {
		planPrune(s, p, t0)
	}
}

func BenchmarkPressureCandidates(b *testing.B) {
	s := bigSnapshot(1000)
	p := DefaultConfig().AutoPrune
	p.Keep = []string{"repo/app1*"}
	lastUse := map[string]time.Time{}
	for i := range 2000 {
		if i%3 == 0 {
			lastUse[fmt.Sprintf("i%d", i)] = t0.Add(-time.Duration(i) * time.Minute)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		pressureCandidates(s, p, lastUse, t0)
	}
}
