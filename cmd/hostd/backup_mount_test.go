package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBackupCLIMount mounts a repository with the mount verb, compares
// the snapshot with its source, and unmounts by cancelling the verb's
// context, as SIGINT and SIGTERM do.
func TestBackupCLIMount(t *testing.T) {
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("no FUSE: %v", err)
	} else {
		f.Close()
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (Debian: fuse3)")
	}
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	mkfile(t, filepath.Join(src, "a"), "alpha")
	mkfile(t, filepath.Join(src, "d", "b"), strings.Repeat("b", 100000))
	if err := os.Symlink("a", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run("create", "--hostname", "h", "--tag", "t", src); code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	if _, _, code := run("mount", filepath.Join(dir, "nonexistent")); code != 2 {
		t.Fatalf("mount on a missing directory: exit %d, want 2", code)
	}
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	root.SetOut(pw)
	root.SetErr(&errOut)
	root.SetArgs([]string{"backup", "mount", "--json", mp})
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	// The JSON document is printed once the view is mounted.
	var info mountInfo
	if err := json.NewDecoder(bufio.NewReader(pr)).Decode(&info); err != nil {
		cancel()
		t.Fatalf("mount: %v (%v) %s", err, <-done, errOut.String())
	}
	if info.Snapshots != 1 || info.Mountpoint != mp {
		t.Errorf("mount printed %+v", info)
	}
	go io.Copy(io.Discard, pr)

	snap := filepath.Join(mp, "hosts", "h", "latest", src)
	out, err := exec.Command("diff", "-r", "--no-dereference", src, snap).CombinedOutput()
	if err != nil {
		t.Errorf("diff -r: %v\n%s", err, out)
	}
	for _, rel := range []string{"a", "d/b", "l", "d"} {
		want, _ := exec.Command("stat", "-c", "%F %a %u %g %Y", filepath.Join(src, rel)).Output()
		got, err := exec.Command("stat", "-c", "%F %a %u %g %Y", filepath.Join(snap, rel)).Output()
		if err != nil || string(got) != string(want) {
			t.Errorf("stat %s: %q %v, source %q", rel, got, err, want)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("mount ended with %v; stderr %s", err, errOut.String())
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), " "+mp+" ") {
		t.Fatalf("%s still mounted after the verb ended", mp)
	}
	// The shared lock is gone: prune can take its exclusive one.
	if _, stderr, code := run("prune"); code != 0 {
		t.Fatalf("prune after unmount: %d %s", code, stderr)
	}
}

// TestBackupCLIMountSignals runs mount as a process and stops it with
// SIGINT and SIGTERM: each time the view is unmounted before it exits.
func TestBackupCLIMountSignals(t *testing.T) {
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("no FUSE: %v", err)
	} else {
		f.Close()
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3 (Debian: fuse3)")
	}
	run, dir := cliRepo(t)
	src := filepath.Join(dir, "src")
	mkfile(t, filepath.Join(src, "a"), "alpha")
	if _, stderr, code := run("create", src); code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := cliProc(t, "", nil, nil, "backup", "mount", mp)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "mounted 1 snapshots") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("mount: %q %v\n%s", line, err, stderr.String())
		}
		if b, err := os.ReadFile(filepath.Join(mp, "snapshots", "latest", src, "a")); err != nil || string(b) != "alpha" {
			t.Errorf("read through the mount: %q %v", b, err)
		}
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 128+int(sig) {
			t.Errorf("%v: exit %d, want %d\n%s", sig, code, 128+int(sig), stderr.String())
		}
		mounts, _ := os.ReadFile("/proc/self/mounts")
		if strings.Contains(string(mounts), " "+mp+" ") {
			_ = exec.Command("fusermount3", "-u", mp).Run()
			t.Fatalf("%v: %s still mounted after mount exited\n%s", sig, mp, stderr.String())
		}
	}
}
