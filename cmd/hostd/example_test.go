package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/hostd/hostd/internal/config/configexample"
)

var update = flag.Bool("update", false, "rewrite configs/hostd.example.yaml")

const exampleHeader = `# hostd example configuration: every option, with its default value and
# what it does. Generated from the config structs' documentation; check a
# file with 'hostd config check FILE', and see a running daemon's effective
# config with 'hostd config show'.
#
# Options that take a secret take a reference, never the value:
#   sops:secrets/v2ray.yaml#v2ray/user_id   a key in a SOPS-encrypted file
#   file:/run/secrets/NAME (or /abs/path)   a file (sops-nix, agenix)
#   cred:NAME                               a systemd credential (LoadCredential=)
#   env:NAME                                an environment variable
`

// TestExampleConfigUpToDate regenerates the example from the config
// structs and compares it with the shipped file (go test -update rewrites
// it), so every option is shown with its real default and documentation.
func TestExampleConfigUpToDate(t *testing.T) {
	g := &configexample.Generator{SrcRoot: "../..", Module: "github.com/hostd/hostd", Header: exampleHeader}
	got, err := g.Generate(sectionsOf(registrations()), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("..", "..", "configs", "hostd.example.yaml")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run 'go test ./cmd/hostd -run TestExampleConfigUpToDate -update'", file)
	}
}
