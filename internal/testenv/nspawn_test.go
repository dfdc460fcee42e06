package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The directories of containers whose test process died (their overlay
// still mounted) are unmounted and removed by the next BootContainer;
// those of a live test process, and directories without an owner, stay.
func TestReapContainerDirs(t *testing.T) {
	RequireRoot(t)
	tmp := t.TempDir()
	exited := exec.Command(LookPath(t, "true"))
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	self := processID(os.Getpid())
	pid, _, _ := strings.Cut(self, " ")
	dirs := map[string]string{ // name: owner file ("" for none)
		"gone":   strconv.Itoa(exited.Process.Pid) + " 1",
		"reused": pid + " 1", // this pid, another start time
		"live":   self,
		"legacy": "",
	}
	for name, owner := range dirs {
		dir := filepath.Join(tmp, containerDirPrefix+name)
		root := filepath.Join(dir, "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", root, err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	}
	reapContainerDirs(tmp)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for name := range dirs {
		dir := filepath.Join(tmp, containerDirPrefix+name)
		_, statErr := os.Stat(dir)
		mounted := strings.Contains(string(mounts), " "+filepath.Join(dir, "root")+" ")
		if stay := name == "live" || name == "legacy"; stay != (statErr == nil) || stay != mounted {
			t.Errorf("%s: exists %v, mounted %v; want both %v", name, statErr == nil, mounted, stay)
		}
	}
}
