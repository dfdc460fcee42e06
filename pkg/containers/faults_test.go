package containers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/service/servicetest"
	"github.com/hostd/hostd/internal/testenv"
)

func TestEngineKilledAndRestarted(t *testing.T) {
	d := docker.Get(t)
	c := apiClient(t, d)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })
	imgID := d.ImportImage(t, "r-img:1", testenv.ImageSpec{Labels: map[string]string{nameLabel: "r"}})
	for i := range 40 {
		d.CLI(t, "create", "--name", fmt.Sprintf("r-stopped-%d", i), "--network", "none", "r-img:1")
	}

	cfg := DefaultConfig()
	cfg.Enable = true
	h := &servicetest.Health{}
	s, reg := newTestService(t, d.Host, cfg, "", h)
	servicetest.Run(t, s)
	nextHealth(t, h, false, 30*time.Second)
	hc := serveAPI(t, s)

	// Kill the engine while a prune runs: the prune stops or finishes,
	// nothing panics, and the service reports itself degraded.
	pruned := make(chan error, 1)
	go func() {
		_, err := s.Prune(context.Background(), "manual", false)
		pruned <- err
	}()
	d.Kill()
	if err := <-pruned; err != nil && !errors.Is(err, ErrEngineDown) {
		t.Errorf("prune during engine crash: %v, want nil or ErrEngineDown", err)
	}
	reason := nextHealth(t, h, true, 30*time.Second)
	if !strings.Contains(reason.Error(), d.Socket) {
		t.Errorf("degraded reason %q does not name the socket", reason)
	}
	if det := s.Details(); det.Reachable || det.Error == "" {
		t.Errorf("details while down: reachable=%v error=%q", det.Reachable, det.Error)
	}
	if got := metricValue(t, reg, "hostd_containers_engine_up"); got != 0 {
		t.Errorf("engine_up = %v while down", got)
	}
	var herr *api.HTTPError
	err := hc.Post(context.Background(), "/v1/containers/prune", PruneRequest{DryRun: true}, nil)
	if !errors.As(err, &herr) || herr.Code != http.StatusServiceUnavailable || !strings.Contains(herr.Msg, "not reachable") {
		t.Errorf("prune while down: %v", err)
	}

	// The engine comes back: hostd reconnects, follows events again and
	// prunes what is left.
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	nextHealth(t, h, false, 30*time.Second)
	before := s.state.lastUse()[imgID]
	d.CLI(t, "run", "--rm", "--network", "none", "r-img:1", "/bin/busybox", "true")
	testenv.WaitFor(t, 20*time.Second, func() error {
		if !s.state.lastUse()[imgID].After(before) {
			return errors.New("container run after the restart not seen in the event stream")
		}
		return nil
	})
	var rep Report
	if err := hc.Post(context.Background(), "/v1/containers/prune", PruneRequest{}, &rep); err != nil {
		t.Fatalf("prune after restart: %v", err)
	}
	if rep.Trigger != "manual" || rep.DryRun || rep.Error != "" {
		t.Errorf("report after restart: %+v", rep)
	}
	for k := range inventory(t, c) {
		if strings.HasPrefix(k, "container/") {
			t.Errorf("%s survived the prunes", k)
		}
	}
	if got := metricValue(t, reg, "hostd_containers_engine_up"); got != 1 {
		t.Errorf("engine_up = %v after restart", got)
	}
	if got := metricValue(t, reg, `hostd_containers_removed_objects_total{kind="container"}`); got != 40 {
		t.Errorf("removed containers = %v, want 40 over both prunes", got)
	}
}

func TestObjectInUseIsSkipped(t *testing.T) {
	d := docker.Get(t)
	wipe(t, d)
	t.Cleanup(func() { wipe(t, d) })
	d.ImportImage(t, "u-img:1", testenv.ImageSpec{})
	d.CLI(t, "network", "create", "u-net")
	d.CLI(t, "create", "--name", "u-gone", "--network", "none", "u-img:1")

	cfg := DefaultConfig()
	cfg.AutoPrune.Images.All = true
	s, reg := newTestService(t, d.Host, cfg, "", nil)
	ctx := context.Background()
	snap, err := s.eng.snapshot(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	plan := planPrune(snap, cfg.AutoPrune, time.Now())
	// Between planning and removal: the container goes away, the network
	// and the image get used by a running container.
	d.CLI(t, "rm", "u-gone")
	d.CLI(t, "run", "-d", "--name", "u-user", "--network", "u-net", "u-img:1")
	r := &Report{}
	if err := s.removeAll(ctx, r, plan); err != nil {
		t.Fatalf("removeAll: %v", err)
	}
	if len(r.Objects) != 0 || len(r.Skipped) != 3 {
		t.Fatalf("removed %v, skipped %v; want all 3 skipped", r.Objects, r.Skipped)
	}
	for _, sk := range r.Skipped {
		if sk.Error == "" {
			t.Errorf("skipped %s without a reason", sk.ID)
		}
	}
	for _, kind := range []string{"container", "network", "image"} {
		if got := metricValue(t, reg, `hostd_containers_skipped_objects_total{kind="`+kind+`"}`); got != 1 {
			t.Errorf("skipped %s = %v, want 1", kind, got)
		}
	}
}

func TestNoSocketIsDegradedUntilTheEngineAppears(t *testing.T) {
	d := docker.Get(t)
	sock := filepath.Join(testenv.TempDir(t), "docker.sock")
	h := &servicetest.Health{}
	s, _ := newTestService(t, "unix://"+sock, DefaultConfig(), "", h)
	servicetest.Run(t, s)
	reason := nextHealth(t, h, true, 10*time.Second)
	if !strings.Contains(reason.Error(), "not reachable") || !strings.Contains(reason.Error(), sock) {
		t.Errorf("degraded reason %q", reason)
	}
	if _, err := s.Prune(context.Background(), "manual", true); !errors.Is(err, ErrEngineDown) {
		t.Errorf("prune without engine: %v, want ErrEngineDown", err)
	}
	// The socket appears: hostd, retrying with backoff, connects.
	if err := os.Symlink(d.Socket, sock); err != nil {
		t.Fatal(err)
	}
	nextHealth(t, h, false, 10*time.Second)
	if det := s.Details(); !det.Reachable || det.Error != "" || det.APIVersion == "" {
		t.Errorf("details after the engine appeared: %+v", det)
	}
}

// TestPermissionDenied runs the connection as an unprivileged user in a
// child process, against a socket only root may open.
func TestPermissionDenied(t *testing.T) {
	if sock := os.Getenv("HOSTD_TEST_DENIED_SOCKET"); sock != "" {
		e, err := newEngine("unix://" + sock)
		if err != nil {
			fmt.Println("new engine:", err)
			os.Exit(2)
		}
		_, err = e.connect(context.Background())
		fmt.Println(err)
		if !errors.Is(err, ErrPermission) {
			os.Exit(1)
		}
		os.Exit(0)
	}
	testenv.RequireRoot(t)
	d := docker.Get(t)
	// The test binary may sit in a directory only root can enter.
	dir := testenv.TempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "containers.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.Socket, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestPermissionDenied$")
	cmd.Env = []string{"HOSTD_TEST_DENIED_SOCKET=" + d.Socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	for _, want := range []string{"permission denied", "docker group", d.Socket} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error %q does not mention %q", out, want)
		}
	}
}

// TestStuckEngine runs the service against a socket that accepts and
// never answers: the service is degraded within connect_timeout, with an
// error naming the socket and the option, and a prune through the API
// fails instead of hanging.
func TestStuckEngine(t *testing.T) {
	peer := testenv.NewStuckPeer(t, "unix", filepath.Join(testenv.TempDir(t), "docker.sock"))
	cfg := DefaultConfig()
	cfg.Enable = true
	cfg.ConnectTimeout = 200 * time.Millisecond
	cfg.RequestTimeout = 300 * time.Millisecond
	h := &servicetest.Health{}
	s, _ := newTestService(t, "unix://"+peer.Addr, cfg, "", h)
	servicetest.Run(t, s)
	hc := serveAPI(t, s)

	reason := nextHealth(t, h, true, 30*time.Second)
	for _, want := range []string{peer.Addr, "no answer to ping within 200ms", "containers.connect_timeout", "not reachable"} {
		if !strings.Contains(reason.Error(), want) {
			t.Errorf("degraded reason %q does not mention %q", reason, want)
		}
	}
	if det := s.Details(); det.Reachable || det.Error == "" {
		t.Errorf("details: reachable=%v error=%q", det.Reachable, det.Error)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var herr *api.HTTPError
	err := hc.Post(ctx, "/v1/containers/prune", PruneRequest{}, nil)
	if !errors.As(err, &herr) || herr.Code != http.StatusServiceUnavailable ||
		!strings.Contains(herr.Msg, "no answer to container list within 300ms (containers.request_timeout)") {
		t.Errorf("prune against a stuck engine: %v, want 503 naming the request and request_timeout", err)
	}
	if peer.Accepted() == 0 {
		t.Error("the stuck peer saw no connection")
	}
}

// TestPruneTimeout bounds a whole prune by prune_timeout even when each
// request's own deadline is far away.
func TestPruneTimeout(t *testing.T) {
	peer := testenv.NewStuckPeer(t, "unix", filepath.Join(testenv.TempDir(t), "docker.sock"))
	cfg := DefaultConfig()
	cfg.Enable = true
	cfg.RequestTimeout = time.Hour
	cfg.PruneTimeout = 200 * time.Millisecond
	s, _ := newTestService(t, "unix://"+peer.Addr, cfg, "", nil)
	_, err := s.Prune(context.Background(), "manual", true)
	if err == nil || !strings.Contains(err.Error(), "prune did not finish within 200ms (containers.prune_timeout)") {
		t.Errorf("prune = %v, want the prune_timeout error", err)
	}
}
