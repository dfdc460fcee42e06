package main

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
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

// TestRoutePermissionsFollowDeclarations walks the daemon's route table
// (GET /v1/routes: the daemon's routes and every service's, as declared)
// as a member of socket_group (a reader) and as root (a writer): readers
// are refused exactly the routes declared "write" (dns query is open to
// them, dns flush is not), writers none. The table must hold a route for
// every service and every route constant of internal/api.
func TestRoutePermissionsFollowDeclarations(t *testing.T) {
	w := newReaderWorld(t)
	var table []api.RouteInfo
	if err := api.NewClient(w.socket).Get(context.Background(), api.RouteRoutes, &table); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d routes", len(table))
	declared := map[string]bool{}
	services := map[string]bool{}
	for _, r := range table {
		declared[r.Path] = true
		services[r.Service] = true
	}
	for _, reg := range registrations() {
		if !services[reg.Name] {
			t.Errorf("service %s has no routes in the table (is it running?)", reg.Name)
		}
	}
	for _, c := range routeConstants(t) {
		if !declared[c] {
			t.Errorf("route %s of internal/api/routes.go is in no route table", c)
		}
	}
	for _, r := range table {
		name := r.Method + " " + r.Path
		if r.Access != "read" && r.Access != "write" {
			t.Errorf("%s: access %q", name, r.Access)
			continue
		}
		cmd := cliProc(t, w.bin, w.cred, []string{"HOSTD_TEST_MAIN=", "HOSTD_TEST_REQUEST=1"}, r.Method, r.Path, w.socket)
		out, code := runProc(t, cmd)
		out = strings.TrimSpace(out)
		readerCode, _ := strconv.Atoi(strings.Fields(out + " 0")[0])
		switch {
		case code != 0 || readerCode == 0:
			t.Errorf("%s as a reader: no reply: %s", name, out)
		case r.Access == "write" && (readerCode != 403 || !strings.Contains(out, "may not change hostd")):
			t.Errorf("%s as a reader: %s; the route is writer-only, want 403", name, out)
		case r.Access == "read" && readerCode == 403:
			t.Errorf("%s as a reader: %s; the route is open to readers", name, out)
		}

		var in any
		if r.Method == "POST" {
			in = struct{}{}
		}
		_, err := api.NewClient(w.socket).Raw(context.Background(), r.Method, r.Path, in)
		var he *api.HTTPError
		switch {
		case errors.As(err, &he) && (he.Code == 403 || he.Code == 405 || strings.HasPrefix(he.Msg, "no route")):
			t.Errorf("%s as root: %d %s, want the route's own answer", name, he.Code, he.Msg)
		case err != nil && !errors.As(err, &he):
			t.Errorf("%s as root: %v", name, err)
		}
	}
}

// routeConstants returns the paths of internal/api/routes.go's Route*
// constants, but for the service prefix, which is a pattern.
func routeConstants(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "internal", "api", "routes.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Route") || n.Name == "RouteServicePrefix" || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					p, _ := strconv.Unquote(lit.Value)
					out = append(out, p)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no route constants in internal/api/routes.go")
	}
	return out
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
