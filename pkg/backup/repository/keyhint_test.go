package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// plantedName is the name of the i-th planted key file: it sorts before
// any key file hostd writes once the genuine key is renamed to sort last.
func plantedName(i int) string { return fmt.Sprintf("%064x", i) }

// lastName renames the genuine key of the repository in dir to sort
// after every planted one and returns its new name.
func lastName(t *testing.T, dir, name string) string {
	t.Helper()
	last := "f" + name[1:]
	if err := os.Rename(filepath.Join(dir, "keys", name), filepath.Join(dir, "keys", last)); err != nil {
		t.Fatal(err)
	}
	return last
}

// withKDF returns genuine's key file with other KDF parameters: well
// formed and in range, so only a derivation tells it does not open.
func withKDF(t *testing.T, genuine []byte, memKiB, passes uint32, threads uint8) []byte {
	t.Helper()
	var kf KeyFile
	if err := json.Unmarshal(genuine, &kf); err != nil {
		t.Fatal(err)
	}
	kf.KDF.MemoryKiB, kf.KDF.Time, kf.KDF.Threads = memKiB, passes, threads
	if err := kf.KDF.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openDir(t *testing.T, dir, password, hint string) (*Repository, uint64, error) {
	t.Helper()
	var r *Repository
	var err error
	n := allocated(func() {
		r, err = Open(context.Background(), backend.NewLocal(dir), []byte(password), Options{KeyHint: hint})
	})
	return r, n, err
}

// Junk planted in the keys directory, named to sort first, spends no key
// derivation: the right password opens the repository, with or without
// the hint. Before, 32 junk files pushed the genuine key out of the key
// files tried.
func TestOpenPlantedJunkKeyFiles(t *testing.T) {
	r, dir := newTestRepo(t)
	r.Close()
	name, _ := genuineKey(t, dir)
	name = lastName(t, dir, name)
	for i := range 36 {
		plantKey(t, dir, plantedName(i), []byte("garbage\n"))
	}
	for _, hint := range []string{"", name, name[:8]} {
		r2, n, err := openDir(t, dir, "pw", hint)
		if err != nil {
			t.Fatalf("open beside 36 junk key files (hint %q): %v", hint, err)
		}
		if r2.KeyName() != name {
			t.Fatalf("opened with %s, want %s", r2.KeyName(), name)
		}
		r2.Close()
		if n > 32<<20 {
			t.Fatalf("open allocated %d MiB", n>>20)
		}
	}

	// Past the files read, only the hint finds the genuine key.
	for i := 36; i < MaxKeyFiles; i++ {
		plantKey(t, dir, plantedName(i), []byte("garbage\n"))
	}
	_, _, err := openDir(t, dir, "pw", "")
	want := fmt.Sprintf("1 more key files not tried (at most %d are)", MaxKeyFiles)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%d more key files damaged", MaxKeyFiles-maxKeyProblems)) {
		t.Fatalf("open behind %d junk files: %v, want %q", MaxKeyFiles, err, want)
	}
	if len(err.Error()) > 4096 {
		t.Fatalf("error of %d bytes", len(err.Error()))
	}
	r2, _, err := openDir(t, dir, "pw", name)
	if err != nil {
		t.Fatalf("open behind %d junk files with the hint: %v", MaxKeyFiles, err)
	}
	r2.Close()
}

// Copies of the genuine key with the dearest KDF parameters in range
// (256 MiB, two passes, 64 lanes), named to sort first, cost no
// derivation: the genuine key costs less, so it is tried first, and with
// the hint it is tried first whatever it costs. Before, they pushed it
// out of the key files tried after 32 derivations of 256 MiB.
func TestOpenPlantedInBoundsKeys(t *testing.T) {
	r, dir := newTestRepo(t)
	r.Close()
	name, genuine := genuineKey(t, dir)
	name = lastName(t, dir, name)
	dear := withKDF(t, genuine, crypto.MaxKDFMemoryKiB, 2, 64)
	for i := range 40 {
		plantKey(t, dir, plantedName(i), dear)
	}
	for _, hint := range []string{name, ""} {
		r2, n, err := openDir(t, dir, "pw", hint)
		if err != nil {
			t.Fatalf("open beside 40 planted keys (hint %q): %v", hint, err)
		}
		if r2.KeyName() != name {
			t.Fatalf("opened with %s, want %s", r2.KeyName(), name)
		}
		r2.Close()
		if n > 32<<20 {
			t.Fatalf("open allocated %d MiB: a planted key was derived", n>>20)
		}
	}
}

// The hint is tried first even when it costs more than planted keys: a
// genuine key with hostd's default parameters opens past 40 planted
// cheap keys that would spend the budget of derivations.
func TestOpenKeyHintBeforeCheaperKeys(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r, err := Create(ctx, backend.NewLocal(dir), []byte("pw"), DefaultConfig(), crypto.NewKDFParams(1, 1024, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := r.KeyName()
	r.Close()
	_, genuine := genuineKey(t, dir)
	cheap := withKDF(t, genuine, 8, 1, 1)
	for i := range MaxKeyDerivations + 8 {
		plantKey(t, dir, plantedName(i), cheap)
	}
	if _, _, err := openDir(t, dir, "pw", ""); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "key files not tried (at most") {
		t.Fatalf("open without the hint: %v, want the budget spent on the cheaper planted keys", err)
	}
	r2, _, err := openDir(t, dir, "pw", name)
	if err != nil {
		t.Fatalf("open with the hint: %v", err)
	}
	r2.Close()
	// A hint naming no key file is ignored and said.
	_, _, err = openDir(t, dir, "pw", "nokey")
	if err == nil || !strings.Contains(err.Error(), `key hint "nokey" names no single key file`) {
		t.Fatalf("open with a stale hint: %v", err)
	}
}

// A wrong password costs at most MaxKeyDerivations derivations and
// MaxKeyDerivationWork in all, however many in-range key files are
// planted, and the error says how many were not tried.
func TestOpenKeyDerivationBudget(t *testing.T) {
	r, dir := newTestRepo(t)
	r.Close()
	_, genuine := genuineKey(t, dir)

	t.Run("count", func(t *testing.T) {
		for i := range MaxKeyDerivations + 8 {
			plantKey(t, dir, plantedName(i), withKDF(t, genuine, 8, 1, 1))
		}
		t.Cleanup(func() { removePlanted(t, dir, MaxKeyDerivations+8) })
		_, _, err := openDir(t, dir, "nope", "")
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Derived != MaxKeyDerivations || ke.OverBudget != 9 {
			t.Fatalf("open: %v (%+v), want %d derivations and 9 key files over budget", err, ke, MaxKeyDerivations)
		}
	})
	t.Run("work", func(t *testing.T) {
		// Each as dear as a key may be: 64 MiB, eight passes.
		for i := range 12 {
			plantKey(t, dir, plantedName(i), withKDF(t, genuine, 64<<10, 8, 4))
		}
		t.Cleanup(func() { removePlanted(t, dir, 12) })
		_, n, err := openDir(t, dir, "nope", "")
		// The genuine key (cheapest, tried first) and as many dear
		// ones as fit in what is left of the budget.
		dear := MaxKeyDerivationWork/crypto.MaxKDFWork - 1
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Derived != 1+dear || ke.OverBudget != 12-dear {
			t.Fatalf("open: %v (%+v), want the genuine key and %d dear ones derived", err, ke, dear)
		}
		// Each derivation allocates its memory twice (see
		// crypto.prepareKDFMemory).
		if limit := uint64(dear)*2*(64<<20) + 32<<20; n > limit {
			t.Fatalf("open allocated %d MiB, want at most %d", n>>20, limit>>20)
		}
	})
}

func removePlanted(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		if err := os.Remove(filepath.Join(dir, "keys", plantedName(i))); err != nil {
			t.Fatal(err)
		}
	}
}
