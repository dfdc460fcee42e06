package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// goTool is a Go tool the tests run, built once per test binary into the
// user cache directory (os.UserCacheDir()/hostd-test/DIR/NAME) the first
// time and reused afterwards, by this and later test runs.
type goTool struct {
	once sync.Once
	path string
	err  error
}

// get returns the tool's path, building it with build when the cache
// does not hold it yet: build gets the go command, the cache directory
// dir and the path bin to leave the binary at, complete. A failure
// skips or fails t (Require) naming what.
func (g *goTool) get(t testing.TB, what, dir, name string, build func(goBin, dir, bin string) error) string {
	t.Helper()
	goBin := LookPath(t, "go")
	g.once.Do(func() { g.path, g.err = buildGoTool(goBin, dir, name, build) })
	Require(t, what, g.err)
	return g.path
}

func buildGoTool(goBin, dir, name string, build func(goBin, dir, bin string) error) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(cache, "hostd-test", dir)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := build(goBin, dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}
