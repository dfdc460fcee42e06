package containers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

// TestMissedScheduledPruneRunsAtStart: with persistent, a run missed while
// hostd was down happens as soon as hostd is back; without, hostd waits
// for the next elapse.
func TestMissedScheduledPruneRunsAtStart(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })
	d.ImportImage(t, "s-img:1", testenv.ImageSpec{})

	for _, persistent := range []bool{false, true} {
		name := map[bool]string{false: "not persistent", true: "persistent"}[persistent]
		t.Run(name, func(t *testing.T) {
			d.CLI(t, "create", "--name", "s-stopped", "--network", "none", "s-img:1")
			t.Cleanup(func() { d.Run(nil, "rm", "-f", "s-stopped") })
			stateDir := t.TempDir()
			last := time.Now().Add(-3 * time.Hour).UTC()
			state := `{"version":1,"last_scheduled":"` + last.Format(time.RFC3339Nano) + `","last_use":{}}`
			if err := os.WriteFile(filepath.Join(stateDir, stateFile), []byte(state), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Enable = true
			cfg.AutoPrune.Schedule = "hourly"
			cfg.AutoPrune.Persistent = persistent
			cfg.AutoPrune.HighWatermark, cfg.AutoPrune.LowWatermark = Watermark{}, Watermark{}
			s, _ := newTestService(t, d.Host, cfg, stateDir, nil)
			servicetest.Run(t, s)
			testenv.WaitFor(t, 20*time.Second, func() error {
				if s.Details().NextPrune.IsZero() {
					return errors.New("no next prune yet")
				}
				return nil
			})
			if !persistent {
				next := s.Details().NextPrune
				if want := time.Now().Truncate(time.Hour).Add(time.Hour); !next.Equal(want) {
					t.Errorf("next prune %v, want %v", next, want)
				}
				if s.Details().LastPrune != nil || !inventory(t, c)["container/s-stopped"] {
					t.Errorf("a non-persistent schedule pruned at start")
				}
				return
			}
			testenv.WaitFor(t, 20*time.Second, func() error {
				if lp := s.Details().LastPrune; lp == nil || lp.Trigger != "schedule" {
					return errors.New("no scheduled prune yet")
				}
				return nil
			})
			if inventory(t, c)["container/s-stopped"] {
				t.Errorf("the catch-up prune left the stopped container")
			}
			testenv.WaitFor(t, 10*time.Second, func() error {
				st, err := loadState(stateDir)
				if err != nil {
					return err
				}
				if !st.lastScheduled().After(last) {
					return errors.New("last scheduled run not persisted")
				}
				return nil
			})
		})
	}
}
