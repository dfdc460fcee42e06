package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/internal/daemon/daemontest"
	"github.com/hostd/hostd/internal/testenv"
)

// runCLI runs the hostd CLI in-process and returns its output and exit
// status.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			out.WriteString(ee.err.Error())
		}
	case errors.Is(err, api.ErrNotRunning):
		code = 3
		out.WriteString(err.Error())
	case err != nil:
		code = 1
		out.WriteString(err.Error())
	}
	return out.String(), code
}

// startDaemon runs a daemon in-process with two test services.
func startDaemon(t *testing.T, services string) (socket string) {
	t.Helper()
	return startDaemonWith(t, []daemon.Registration{daemontest.Registration("alpha"), daemontest.Registration("beta")}, services)
}

// startDaemonWith runs a daemon in-process with the given services and
// config sections, and waits until its socket answers.
func startDaemonWith(t *testing.T, regs []daemon.Registration, services string) (socket string) {
	t.Helper()
	return daemontest.Start(t, daemontest.Options{Registrations: regs, Sections: services}).Socket
}

func TestStatusAgainstRunningDaemon(t *testing.T) {
	socket := startDaemon(t, "alpha: {}\nbeta:\n  mode: error\n")
	testenv.WaitFor(t, 10*time.Second, func() error {
		out, _ := runCLI(t, "--socket", socket, "status")
		if !strings.Contains(out, "test fault: beta failed") {
			return fmt.Errorf("no fault yet:\n%s", out)
		}
		return nil
	})
	out, code := runCLI(t, "--socket", socket, "status")
	if code != 1 {
		t.Errorf("exit %d with a failing service, want 1", code)
	}
	for _, want := range []string{"hostd test: not ready", "SERVICE", "alpha", "ready", "beta", "test fault: beta failed", "config:"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusAllReadyExitsZero(t *testing.T) {
	socket := startDaemon(t, "alpha: {}\nbeta: {}\n")
	testenv.WaitFor(t, 10*time.Second, func() error {
		if out, code := runCLI(t, "--socket", socket, "status"); code != 0 {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
}

func TestStatusWithoutDaemon(t *testing.T) {
	socket := filepath.Join(testenv.TempDir(t), "none.sock")
	out, code := runCLI(t, "--socket", socket, "status")
	if code != 3 {
		t.Errorf("exit %d, want 3", code)
	}
	want := "hostd is not running: no socket at " + socket
	if strings.TrimSpace(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestStatusJSONSchema checks `status --json` against the documented
// schema: exactly the fields of api.Status and api.ServiceStatus.
func TestStatusJSONSchema(t *testing.T) {
	socket := startDaemon(t, "alpha: {}\nbeta:\n  mode: error\n")
	testenv.WaitFor(t, 10*time.Second, func() error {
		out, _ := runCLI(t, "--socket", socket, "status", "--json")
		if !strings.Contains(out, "last_error") {
			return fmt.Errorf("no error yet")
		}
		return nil
	})
	out, code := runCLI(t, "--socket", socket, "status", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got, want := keys(top), jsonFields(reflect.TypeFor[api.Status]()); !reflect.DeepEqual(got, want) {
		t.Errorf("status keys %v, want %v", got, want)
	}
	var services []map[string]json.RawMessage
	if err := json.Unmarshal(top["services"], &services); err != nil || len(services) != 2 {
		t.Fatalf("services: %v %s", err, top["services"])
	}
	all := jsonFields(reflect.TypeFor[api.ServiceStatus]())
	required := []string{"name", "restarts", "since", "state"}
	for _, s := range services {
		for _, k := range keys(s) {
			if !contains(all, k) {
				t.Errorf("undocumented key %q", k)
			}
		}
		for _, k := range required {
			if _, ok := s[k]; !ok {
				t.Errorf("service lacks %q: %v", k, keys(s))
			}
		}
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Version != "test" || st.Services[1].State == "ready" || st.Services[1].LastError == "" {
		t.Errorf("status = %+v", st)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func TestConfigCheck(t *testing.T) {
	dir := testenv.TempDir(t)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("hostd:\n  log_levle: info\n  http:\n    listen: nowhere\nprxy: {}\n"), 0o600)
	out, code := runCLI(t, "config", "check", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + `:2:3: hostd.log_levle: unknown key "log_levle" (did you mean "log_level"?)`,
		bad + `:4:13: hostd.http.listen: invalid listen address "nowhere"`,
		bad + `:5:1: prxy: unknown section "prxy"`,
		"3 problem(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("hostd:\n  log_level: debug\n"), 0o600)
	if out, code := runCLI(t, "config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("good config: exit %d\n%s", code, out)
	}
}

func TestConfigExampleIsValid(t *testing.T) {
	out, code := runCLI(t, "config", "example")
	if code != 0 || !strings.Contains(out, "hostd:") {
		t.Fatalf("example: exit %d\n%s", code, out)
	}
	f := filepath.Join(testenv.TempDir(t), "example.yaml")
	os.WriteFile(f, []byte(out), 0o600)
	if out, code := runCLI(t, "config", "check", f); code != 0 {
		t.Errorf("the example config does not pass check:\n%s", out)
	}
}

func TestConfigShowDefaultsLocal(t *testing.T) {
	out, code := runCLI(t, "--socket", filepath.Join(testenv.TempDir(t), "none.sock"), "config", "show", "--local")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"hostd:", "listen: 127.0.0.1:9273", "shutdown_timeout: 15s"} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
}

// TestConfigShowRedactsSecrets: literal values of secret options and
// secret-looking keys never appear in `config show`.
func TestConfigShowRedactsSecrets(t *testing.T) {
	dir := testenv.TempDir(t)
	f := filepath.Join(dir, "c.yaml")
	const uuid = "b831381d-6324-4d53-ad4f-8cda48b30811"
	os.WriteFile(f, []byte("proxy:\n  server:\n    address: 203.0.113.7\n    user_id: "+uuid+"\n    short_id: 6ba85179e30d4fc2\n"), 0o600)
	out, code := runCLI(t, "--config", f, "--socket", filepath.Join(dir, "none.sock"), "config", "show", "--local")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, secret := range []string{uuid, "6ba85179e30d4fc2"} {
		if strings.Contains(out, secret) {
			t.Errorf("config show leaks %s:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "proxy:") {
		t.Errorf("no proxy section:\n%s", out)
	}
}

// TestConfigCheckResolvesSecrets: a secret reference that cannot be
// resolved is reported at its place in the file by `config check`, while
// --no-secrets skips the lookup.
func TestConfigCheckResolvesSecrets(t *testing.T) {
	dir := testenv.TempDir(t)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	f := filepath.Join(dir, "c.yaml")
	os.WriteFile(f, []byte(fmt.Sprintf(`backup:
  jobs:
    good:
      repository: %[1]s/repo1
      paths: [%[1]s/src]
      password: file:%[2]s
    bad:
      repository: %[1]s/repo2
      paths: [%[1]s/src]
      password: file:%[1]s/missing
`, dir, pw)), 0o600)
	// Disabled sections are not checked.
	out, code := runCLI(t, "config", "check", f)
	if code != 0 {
		t.Fatalf("disabled backup: exit %d\n%s", code, out)
	}
	os.WriteFile(f, append([]byte("backup:\n  enable: true\n"), mustRead(t, f)[len("backup:\n"):]...), 0o600)
	out, code = runCLI(t, "config", "check", f)
	if code != 1 || !strings.Contains(out, f+":11:17: backup.jobs.bad.password: secret cannot be resolved") || strings.Contains(out, "jobs.good") {
		t.Errorf("exit %d, want 1 naming only jobs.bad.password:\n%s", code, out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("output leaks a secret:\n%s", out)
	}
	if out, code := runCLI(t, "config", "check", "--no-secrets", f); code != 0 {
		t.Errorf("--no-secrets: exit %d\n%s", code, out)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnknownSubcommand: an unknown verb fails at every level of the
// command tree, naming the verb, while a bare group prints its help.
func TestUnknownSubcommand(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate" for "hostd"`},
		{[]string{"backup", "frobnicate"}, 2, `unknown command "frobnicate" for "hostd backup"`},
		{[]string{"backup", "key", "frob"}, 2, `unknown command "frob" for "hostd backup key"`},
		{[]string{"metrics", "frob"}, 2, `unknown command "frob" for "hostd metrics"`},
		{[]string{"backup"}, 0, "Available Commands"},
		{[]string{"backup", "key"}, 0, "Available Commands"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}
