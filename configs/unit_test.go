package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
)

// TestUnitFileVerifies runs systemd-analyze verify on the unit, with
// ExecStart pointed at an executable that exists here. The man page named
// in Documentation= comes with the package; TestSystemdPackageInstalls
// checks it there.
func TestUnitFileVerifies(t *testing.T) {
	analyze := testenv.LookPath(t, "systemd-analyze")
	unit, err := os.ReadFile("hostd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=hostd", "RuntimeDirectory=hostd", "NoNewPrivileges=yes", "ExecReload=/usr/bin/hostd config reload"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "hostd.service")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(unit), "/usr/bin/hostd", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", f).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
