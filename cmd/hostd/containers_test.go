package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/containers"
)

// containersStep is one CLI run: its arguments, the exit status and
// substrings of the output it must have.
type containersStep struct {
	args []string
	code int
	out  []string
}

func runContainersSteps(t *testing.T, socket string, steps []containersStep) {
	t.Helper()
	for _, st := range steps {
		out, code := runCLI(t, append([]string{"--socket", socket}, st.args...)...)
		name := strings.Join(st.args, " ")
		if code != st.code {
			t.Errorf("hostd %s: exit %d, want %d:\n%s", name, code, st.code, out)
		}
		for _, want := range st.out {
			if !strings.Contains(out, want) {
				t.Errorf("hostd %s: output lacks %q:\n%s", name, want, out)
			}
		}
	}
}

// containersStatus runs `containers status --json` and decodes it.
func containersStatus(t *testing.T, socket string) (containers.StatusDetails, int, string) {
	t.Helper()
	out, code := runCLI(t, "--socket", socket, "--json", "containers", "status")
	var st containers.StatusDetails
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("containers status --json: exit %d, %v:\n%s", code, err, out)
	}
	return st, code, out
}

// dockerNames lists the engine's containers, custom networks and image IDs
// with the docker CLI.
func dockerNames(t *testing.T, d *testenv.Docker) []string {
	t.Helper()
	var names []string
	for _, list := range [][]string{
		{"ps", "-a", "--format", "container/{{.Names}}"},
		{"network", "ls", "--filter", "type=custom", "--format", "network/{{.Name}}"},
		{"images", "-a", "--no-trunc", "--format", "image/{{.ID}}"},
	} {
		names = append(names, strings.Fields(d.CLI(t, list...))...)
	}
	slices.Sort(names)
	return names
}

func dockerInt(t *testing.T, d *testenv.Docker, args ...string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(d.CLI(t, args...), 10, 64)
	if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return n
}

// TestContainersCLI drives `hostd containers status|prune` against a
// daemon whose containers service talks to a real dockerd, checks every
// claim against the docker CLI, and finally stops the engine.
func TestContainersCLI(t *testing.T) {
	d := testenv.StartDocker(t, testenv.DockerOptions{DataRootSize: 256 << 20})
	imgID := d.ImportImage(t, "cli-img:1", testenv.ImageSpec{Payload: 64 << 10})
	dangling := d.ImportImage(t, "", testenv.ImageSpec{Payload: 2 << 20})
	d.CLI(t, "create", "--name", "cli-stopped", "--network", "none", "cli-img:1")
	d.CLI(t, "run", "--name", "cli-exited", "--network", "none", "cli-img:1",
		"/bin/busybox", "dd", "if=/dev/zero", "of=/tmp/fill", "bs=1024", "count=512")
	d.CLI(t, "create", "--name", "cli-kept", "--label", "hostd.keep", "--network", "none", "cli-img:1")
	d.CLI(t, "network", "create", "cli-net")
	exitedSize := dockerInt(t, d, "inspect", "--size", "--format", "{{.SizeRw}}", "cli-exited")
	danglingSize := dockerInt(t, d, "image", "inspect", "--format", "{{.Size}}", dangling)
	version := d.CLI(t, "version", "--format", "{{.Server.Version}}")
	before := dockerNames(t, d)
	if exitedSize < 512<<10 || danglingSize < 2<<20 {
		t.Fatalf("fixture sizes: container %d, image %d", exitedSize, danglingSize)
	}

	socket := startDaemonWith(t, []daemon.Registration{daemon.Register("containers", containers.DefaultConfig, containers.New)},
		fmt.Sprintf("containers:\n  enable: true\n  host: %s\n", d.Host))
	testenv.WaitFor(t, 20*time.Second, func() error {
		if st, code, out := containersStatus(t, socket); code != 0 || st.DiskSizeBytes == 0 {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})

	// Status: the engine's version and the data root's filesystem.
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.DataRoot, &fs); err != nil {
		t.Fatal(err)
	}
	st, _, out := containersStatus(t, socket)
	if size := fs.Blocks * uint64(fs.Bsize); !st.Reachable || st.EngineVersion != version || st.APIVersion == "" ||
		st.RootDir != d.DataRoot || st.DiskSizeBytes != size || st.DiskUsedBytes == 0 || st.DiskUsedBytes > size {
		t.Errorf("status --json (engine %s, statfs size %d):\n%s", version, size, out)
	}
	runContainersSteps(t, socket, []containersStep{
		{[]string{"containers", "status"}, 0, []string{"Engine:", version + " (API " + st.APIVersion + ")", "Host:", d.Host,
			"Disk:", " used (", "%) in " + d.DataRoot, "Watermarks:  high 90%, low 80%",
			"Last prune:  none since hostd started", "Next prune:", "(weekly)", "Reclaimed:   0 B since hostd started"}},
		{[]string{"containers", "status", "extra"}, 2, []string{"unknown command"}},
		{[]string{"containers", "prune", "--force"}, 2, []string{"unknown flag: --force"}},
	})

	// Dry run: what would go, with sizes and a total; nothing goes.
	short := strings.TrimPrefix(dangling, "sha256:")[:12]
	wantTotal := exitedSize + danglingSize
	runContainersSteps(t, socket, []containersStep{
		{[]string{"containers", "prune", "--dry-run"}, 0, []string{"KIND", "SIZE", "REASON",
			"container", "cli-stopped", "cli-exited", "network", "cli-net", "image", short, "dangling",
			"\nWould remove 4 objects, " + containersSize(wantTotal) + " in total.\n"}},
	})
	out, code := runCLI(t, "--socket", socket, "--json", "containers", "prune", "--dry-run")
	var rep containers.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("prune --dry-run --json: exit %d, %v:\n%s", code, err, out)
	}
	got := map[string]int64{}
	for _, o := range rep.Objects {
		key := string(o.Kind) + "/" + o.Name
		if o.Kind == containers.KindImage {
			key = "image/" + o.ID
		}
		got[key] = o.Size
	}
	want := map[string]int64{"container/cli-stopped": 0, "container/cli-exited": exitedSize, "network/cli-net": 0, "image/" + dangling: danglingSize}
	if fmt.Sprint(got) != fmt.Sprint(want) || !rep.DryRun || rep.Trigger != "manual" || rep.TotalBytes != wantTotal || rep.ReclaimedBytes != 0 {
		t.Errorf("dry run objects %v, want %v; report %+v", got, want, rep)
	}
	if after := dockerNames(t, d); !slices.Equal(after, before) {
		t.Errorf("the dry run changed the engine: before %v, after %v", before, after)
	}

	// Prune: the same objects go, the kept container and its image stay.
	runContainersSteps(t, socket, []containersStep{
		{[]string{"containers", "prune"}, 0, []string{"cli-stopped", "cli-exited", "cli-net", short,
			"\nRemoved 4 objects, reclaimed " + containersSize(wantTotal) + ".\n"}},
	})
	left := dockerNames(t, d)
	if want := []string{"container/cli-kept", "image/" + imgID}; !slices.Equal(left, want) {
		t.Errorf("after the prune the engine has %v, want %v", left, want)
	}
	runContainersSteps(t, socket, []containersStep{
		{[]string{"containers", "status"}, 0, []string{"(manual): 4 removed, 0 skipped, " + containersSize(wantTotal) + " reclaimed",
			"Reclaimed:   " + containersSize(wantTotal) + " since hostd started"}},
		{[]string{"status"}, 0, []string{"containers", "ready", "engine " + version, "disk ", "last prune", "freed " + containersSize(wantTotal)}},
		{[]string{"containers", "prune"}, 0, []string{"Removed 0 objects, reclaimed 0 B."}},
	})
	st, _, out = containersStatus(t, socket)
	if st.LastPrune == nil || st.LastPrune.DryRun || len(st.LastPrune.Objects) != 0 || st.ReclaimedBytesTotal != wantTotal {
		t.Errorf("status --json after the prunes:\n%s", out)
	}

	// The engine goes away: status and prune exit 1 and say why.
	d.Stop()
	testenv.WaitFor(t, 20*time.Second, func() error {
		if st, code, out := containersStatus(t, socket); code != 1 || st.Reachable {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	runContainersSteps(t, socket, []containersStep{
		{[]string{"containers", "status"}, 1, []string{"Engine:", "unreachable: ", d.Socket}},
		{[]string{"containers", "prune", "--dry-run"}, 1, []string{"not reachable"}},
		{[]string{"containers", "prune"}, 1, []string{"not reachable"}},
		{[]string{"status"}, 1, []string{"containers", "degraded"}},
	})
}

// TestContainersCLINotEnabled: with the section disabled the verbs exit 1
// and say the service is not enabled.
func TestContainersCLINotEnabled(t *testing.T) {
	socket := startDaemonWith(t, []daemon.Registration{daemon.Register("containers", containers.DefaultConfig, containers.New)},
		"containers:\n  enable: false\n")
	for _, args := range [][]string{{"containers", "status"}, {"containers", "prune", "--dry-run"}} {
		out, code := runCLI(t, append([]string{"--socket", socket}, args...)...)
		if code != 1 || !strings.Contains(out, "service containers is not enabled") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

func TestContainersCLIWithoutDaemon(t *testing.T) {
	socket := filepath.Join(testenv.TempDir(t), "none.sock")
	for _, args := range [][]string{{"containers", "status"}, {"containers", "prune"}, {"--json", "containers", "prune", "--dry-run"}} {
		out, code := runCLI(t, append([]string{"--socket", socket}, args...)...)
		if code != 3 || !strings.Contains(out, "hostd is not running") {
			t.Errorf("%v: exit %d, %q; want 3 and not running", args, code, out)
		}
	}
}
