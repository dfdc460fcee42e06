package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/repository"
)

// A job remembers the key file that opened its repository and tries it
// first next time: key files planted in the storage (as many as the
// budget of key derivations, as cheap as the genuine one and sorting
// before it) lock out an open without the hint, not the job.
func TestJobRemembersKey(t *testing.T) {
	const pw = "key-hint-pw"
	repo := initRepo(t, pw)
	job := testJob(repo, sourceTree(t, 2, 1024), writeSecret(t, pw))
	job.Schedule = "hourly UTC"
	stateDir := t.TempDir()
	h := newHarness(t, Config{Enable: true, Jobs: map[string]Job{"home": job}}, stateDir)
	h.serve()
	h.idle()
	h.clock.Set(t0.Add(time.Hour))
	h.waitRuns("home", 1)
	h.idle()

	keys, err := os.ReadDir(filepath.Join(repo, "keys"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	genuine := keys[0].Name()
	if st := h.jobState("home"); st.LastResult != ResultSuccess || st.KeyName != genuine {
		t.Fatalf("after the first run: result %q (%s), key %q, want %s", st.LastResult, st.LastError, st.KeyName, genuine)
	}
	if saved, err := h.svc.store.load("home"); err != nil || saved.KeyName != genuine {
		t.Fatalf("saved state key %q (%v), want %s", saved.KeyName, err, genuine)
	}

	// Copies of the genuine key with another salt: in range, as cheap,
	// named to sort first, and opened by no password.
	b, err := os.ReadFile(filepath.Join(repo, "keys", genuine))
	if err != nil {
		t.Fatal(err)
	}
	var kf repository.KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	for i := range repository.MaxKeyDerivations + 4 {
		kf.KDF.Salt = []byte(fmt.Sprintf("planted salt %04d", i))
		pb, err := json.Marshal(kf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "keys", fmt.Sprintf("%064x", i)), pb, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if genuine < fmt.Sprintf("%064x", repository.MaxKeyDerivations+4) {
		t.Skipf("genuine key %s sorts among the planted ones", genuine)
	}
	_, err = backup.Open(context.Background(), repo, []byte(pw), backup.OpenOptions{NoCache: true})
	if !errors.Is(err, backup.ErrWrongPassword) || !strings.Contains(err.Error(), "key files not tried") {
		t.Fatalf("open without the hint: %v, want the planted keys to spend the budget", err)
	}

	// As after a restart: the key the first run unlocked is forgotten,
	// the hint remains.
	h.svc.keys.clear()
	h.clock.Set(t0.Add(2 * time.Hour))
	h.waitRuns("home", 2)
	h.idle()
	if st := h.jobState("home"); st.LastResult != ResultSuccess || st.KeyName != genuine {
		t.Fatalf("run beside planted keys: result %q (%s), key %q", st.LastResult, st.LastError, st.KeyName)
	}
	if n := h.svc.keyDerivations.Load(); n != 2 {
		t.Fatalf("%d key derivations, want 2 (one a run)", n)
	}
}
