package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// SOPSVersion is the sops release tests encrypt with.
const SOPSVersion = "v3.13.3"

// sops is built once per test binary.
var sops goTool

// SOPS returns the path of the real sops tool, built from its Go module
// into the user cache directory the first time and reused afterwards.
func SOPS(t testing.TB) string {
	t.Helper()
	return sops.get(t, "sops "+SOPSVersion+" (go install)", "sops-"+SOPSVersion, "sops", func(goBin, dir, _ string) error {
		cmd := exec.Command(goBin, "install", "github.com/getsops/sops/v3/cmd/sops@"+SOPSVersion)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			return errors.New(err.Error() + ": " + string(out))
		}
		return nil
	})
}

// AgeKey is a fresh age identity in a key file.
type AgeKey struct {
	File      string // the identity, as SOPS_AGE_KEY_FILE expects
	Recipient string // age1...
}

// NewAgeKey writes a fresh age identity to dir/name.
func NewAgeKey(t testing.TB, dir, name string) AgeKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return AgeKey{File: p, Recipient: id.Recipient().String()}
}

// SOPSEncrypt encrypts plain (typ "yaml" or "json") with the real sops tool,
// run in dir (so a dir/.sops.yaml applies), to the age recipients (none:
// the .sops.yaml rules decide), and writes dir/name.typ. Extra sops
// arguments go before the file name.
func SOPSEncrypt(t testing.TB, dir, name, typ, plain string, args []string, recipients ...string) string {
	t.Helper()
	in := filepath.Join(dir, name+".plain."+typ)
	if err := os.WriteFile(in, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(in)
	cmdArgs := append([]string{"encrypt", "--input-type", typ, "--output-type", typ}, args...)
	if len(recipients) > 0 {
		cmdArgs = append(cmdArgs, "--age", strings.Join(recipients, ","))
	}
	cmd := exec.Command(SOPS(t), append(cmdArgs, in)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops encrypt: %v: %s", err, stderr.String())
	}
	p := filepath.Join(dir, name+"."+typ)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
