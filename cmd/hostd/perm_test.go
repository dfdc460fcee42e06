package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
)

// route is one local API route and who may call it, as its service
// declares (api.RequireWriter around the handler).
type route struct {
	method, path string
	writerOnly   bool
}

// routes is every route of the daemon and its services.
var routes = []route{
	{"GET", api.RouteStatus, false},
	{"GET", api.RouteVersion, false},
	{"GET", api.RouteConfig, false},
	{"POST", api.RouteConfigReload, true},
	{"GET", api.RouteNetcfgStatus, false},
	{"POST", api.RouteNetcfgDNSQuery, false},
	{"POST", api.RouteNetcfgDNSFlush, true},
	{"GET", api.RouteMetricsQuery + "?query=up", false},
	{"GET", api.RouteProxyStatus, false},
	{"POST", api.RouteProxyTest, true},
	{"GET", api.RouteBackupJobs, false},
	{"POST", api.RouteBackupRun, true},
	{"GET", api.RouteContainersStatus, false},
	{"POST", api.RouteContainersPrune, true},
	{"GET", api.RouteAudioStatus, false},
	{"POST", api.RouteAudioVolume, true},
	{"POST", api.RouteAudioMute, true},
	{"POST", api.RouteAudioDefault, true},
	{"POST", api.RouteAudioProfile, true},
}

// readerWorld is a daemon run as root with hostd.socket_group set and
// every service enabled, and a copy of the test binary that the group's
// member (nobody, group nogroup) can run.
type readerWorld struct {
	socket string
	bin    string
	cred   *syscall.Credential
}

func newReaderWorld(t *testing.T) *readerWorld {
	t.Helper()
	testenv.RequireRoot(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		testenv.Require(t, "user nobody", err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		testenv.Require(t, "group nogroup", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	pub := testenv.TempDir(t)
	if err := os.Chmod(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pub, "hostd.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	secret := filepath.Join(pub, "secret")
	if err := os.WriteFile(secret, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(td *daemontest.Daemon) string {
		if err := os.Chmod(td.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`hostd:
  state_dir: %[1]s/state
  socket: %[2]s
  socket_group: nogroup
  http:
    listen: %[3]s
proxy:
  enable: true
  socks:
    listen: %[4]s
  http:
    listen: %[5]s
  server:
    address: 127.0.0.1
    port: 9
    user_id: file:%[6]s
    public_key: file:%[6]s
    short_id: file:%[6]s
  server_name: example.org
  health_interval: 1h
  health_timeout: 2s
backup:
  enable: true
  jobs:
    home:
      repository: %[1]s/repo
      paths: [%[1]s]
      password: file:%[6]s
      schedule: yearly
containers:
  enable: true
  host: unix://%[1]s/no-docker.sock
audio:
  enable: true
  server: unix:%[1]s/no-pulse
`, td.Dir, td.Socket, td.HTTP, testenv.FreeAddr(t), testenv.FreeAddr(t), secret)
	}
	td := daemontest.Start(t, daemontest.Options{Registrations: registrations(), Config: config})
	return &readerWorld{socket: td.Socket, bin: bin, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// TestRoutePermissionsFollowDeclarations walks every route as a member of
// socket_group (a reader) and as root (a writer): readers are refused
// exactly the routes their service declares writer-only (dns query is
// open to them, dns flush is not), writers none.
func TestRoutePermissionsFollowDeclarations(t *testing.T) {
	w := newReaderWorld(t)
	for _, r := range routes {
		cmd := cliProc(t, w.bin, w.cred, []string{"HOSTD_TEST_MAIN=", "HOSTD_TEST_REQUEST=1"}, r.method, r.path, w.socket)
		out, code := runProc(t, cmd)
		readerCode, _ := strconv.Atoi(strings.Fields(out + " 0")[0])
		var in any
		if r.method == "POST" {
			in = struct{}{}
		}
		_, err := api.NewClient(w.socket).Raw(context.Background(), r.method, r.path, in)
		writerCode := 200
		if he, ok := err.(*api.HTTPError); ok {
			writerCode = he.Code
		} else if err != nil {
			writerCode = 0
		}
		switch {
		case code != 0 || readerCode == 0:
			t.Errorf("%s %s as a reader: no reply: %s", r.method, r.path, out)
		case r.writerOnly && readerCode != 403:
			t.Errorf("%s %s as a reader: %s; the route is writer-only, want 403", r.method, r.path, strings.TrimSpace(out))
		case !r.writerOnly && readerCode == 403:
			t.Errorf("%s %s as a reader: %s; the route is open to readers", r.method, r.path, strings.TrimSpace(out))
		}
		if writerCode == 403 || writerCode == 0 {
			t.Errorf("%s %s as root: %d %v, want an answer other than 403", r.method, r.path, writerCode, err)
		}
	}
}

// TestMutatingVerbsFailForReaders runs the CLI as a member of
// socket_group: every mutating verb must exit non-zero with the daemon's
// refusal, never report success; reading verbs and dns query work.
func TestMutatingVerbsFailForReaders(t *testing.T) {
	w := newReaderWorld(t)
	for _, args := range [][]string{
		{"config", "reload"},
		{"dns", "flush"},
		{"containers", "prune", "--dry-run"},
		{"backup", "run", "home"},
		{"audio", "volume", "50%"},
		{"audio", "mute", "on"},
		{"proxy", "test"},
	} {
		out, code := runProc(t, cliProc(t, w.bin, w.cred, nil, append([]string{"--socket", w.socket}, args...)...))
		if code == 0 || !strings.Contains(out, "may not change hostd") {
			t.Errorf("hostd %v as a reader: exit %d, want non-zero with the daemon's refusal:\n%s", args, code, out)
		}
		if strings.Contains(out, "reloaded") || strings.Contains(out, "restarted") {
			t.Errorf("hostd %v as a reader reports success:\n%s", args, out)
		}
	}
	for _, args := range [][]string{{"status"}, {"version"}, {"config", "show"}, {"dns", "query", "localhost"}} {
		out, _ := runProc(t, cliProc(t, w.bin, w.cred, nil, append([]string{"--socket", w.socket}, args...)...))
		if strings.Contains(out, "may not change hostd") || strings.Contains(out, "permission denied") {
			t.Errorf("hostd %v as a reader is refused:\n%s", args, out)
		}
	}
}
