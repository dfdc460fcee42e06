package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/hostd/hostd/internal/testenv"
)

const v2rayYAML = `# server of the seed's services.v2rayWithSecrets
v2ray:
  server_address: vpn.example.com
  server_port: 443
  user_id: 6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d
  public_key: E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM
  short_id: 0123456789abcdef
  # lists, floats, booleans and unencrypted keys all enter the MAC
  mirrors: [a.example.com, b.example.com]
  weight: 0.5
  enabled: true
  note_unencrypted: kept in clear
`

const v2rayJSON = `{"v2ray": {"server_address": "vpn.example.com", "server_port": 443, "user_id": "6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d", "flags": [1, 2.5, false]}}`

func TestResolveSOPS(t *testing.T) {
	dir := t.TempDir()
	key := testenv.NewAgeKey(t, dir, "keys.txt")
	other := testenv.NewAgeKey(t, dir, "other.txt")
	yamlFile := testenv.SOPSEncrypt(t, dir, "v2ray", "yaml", v2rayYAML, nil, other.Recipient, key.Recipient)
	jsonFile := testenv.SOPSEncrypt(t, dir, "v2ray", "json", v2rayJSON, nil, key.Recipient)
	// mac_only_encrypted exists only as a .sops.yaml creation rule.
	macDir := filepath.Join(dir, "mac")
	os.Mkdir(macDir, 0o700)
	rules := "creation_rules:\n  - age: " + key.Recipient + "\n    mac_only_encrypted: true\n    encrypted_regex: ^(user_id|public_key|short_id)$\n"
	if err := os.WriteFile(filepath.Join(macDir, ".sops.yaml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.SOPSEncrypt(t, macDir, "maconly", "yaml", v2rayYAML, nil)
	for _, f := range []string{yamlFile, jsonFile} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("vpn.example.com")) {
			t.Fatalf("%s holds a value in clear: not encrypted", f)
		}
	}

	tests := []struct {
		name string
		ref  Ref
		want string
	}{
		{"yaml string", Ref("sops:v2ray.yaml#v2ray/server_address"), "vpn.example.com"},
		{"yaml int", Ref("sops:v2ray.yaml#v2ray/server_port"), "443"},
		{"yaml uuid", Ref("sops:v2ray.yaml#v2ray/user_id"), "6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d"},
		{"yaml public key", Ref("sops:v2ray.yaml#v2ray/public_key"), "E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM"},
		{"yaml hex short id", Ref("sops:v2ray.yaml#v2ray/short_id"), "0123456789abcdef"},
		{"yaml bool", Ref("sops:v2ray.yaml#v2ray/enabled"), "true"},
		{"yaml float", Ref("sops:v2ray.yaml#v2ray/weight"), "0.5"},
		{"yaml unencrypted", Ref("sops:v2ray.yaml#v2ray/note_unencrypted"), "kept in clear"},
		{"absolute path", Ref("sops:" + yamlFile + "#/v2ray/short_id/"), "0123456789abcdef"},
		{"json", Ref("sops:v2ray.json#v2ray/server_address"), "vpn.example.com"},
		{"json int", Ref("sops:v2ray.json#v2ray/server_port"), "443"},
		{"mac only encrypted", Ref("sops:mac/maconly.yaml#v2ray/user_id"), "6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d"},
		{"mac only encrypted clear value", Ref("sops:mac/maconly.yaml#v2ray/server_address"), "vpn.example.com"},
	}
	r := &Resolver{BaseDir: dir, Getenv: envMap(map[string]string{"SOPS_AGE_KEY_FILE": key.File})}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Resolve(%s) = %q, want %q", tt.ref, got, tt.want)
			}
		})
	}

	// Identities may also come from the Resolver's own key file (the
	// config's secrets.age_key_file), or inline from $SOPS_AGE_KEY.
	inline, _ := os.ReadFile(other.File)
	for name, r := range map[string]*Resolver{
		"age_key_file": {BaseDir: dir, AgeKeyFile: other.File, Getenv: envMap(nil)},
		"SOPS_AGE_KEY": {BaseDir: dir, Getenv: envMap(map[string]string{"SOPS_AGE_KEY": string(inline)})},
	} {
		got, err := r.Resolve(context.Background(), "sops:v2ray.yaml#v2ray/server_address")
		if err != nil || string(got) != "vpn.example.com" {
			t.Errorf("%s: Resolve = %q, %v", name, got, err)
		}
	}
}

func TestResolveSOPSErrors(t *testing.T) {
	dir := t.TempDir()
	key := testenv.NewAgeKey(t, dir, "keys.txt")
	wrong := testenv.NewAgeKey(t, dir, "wrong.txt")
	enc := testenv.SOPSEncrypt(t, dir, "v2ray", "yaml", v2rayYAML, nil, key.Recipient)
	orig, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, edit func(string) string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(edit(string(orig))), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	// Swap two encrypted values: each is fine alone, but bound to its path.
	lines := strings.Split(string(orig), "\n")
	var addr, port int
	for i, l := range lines {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "server_address:"):
			addr = i
		case strings.HasPrefix(strings.TrimSpace(l), "server_port:"):
			port = i
		}
	}
	write("swapped.yaml", func(string) string {
		ls := append([]string(nil), lines...)
		a, _ := strings.CutPrefix(strings.TrimSpace(ls[addr]), "server_address:")
		p, _ := strings.CutPrefix(strings.TrimSpace(ls[port]), "server_port:")
		ls[addr] = "    server_address:" + p
		ls[port] = "    server_port:" + a
		return strings.Join(ls, "\n")
	})
	write("edited.yaml", func(s string) string { return strings.Replace(s, "kept in clear", "edited in clear", 1) })
	write("dropped.yaml", func(s string) string {
		ls := strings.Split(s, "\n")
		for i, l := range ls {
			if strings.Contains(l, "weight:") {
				return strings.Join(append(ls[:i:i], ls[i+1:]...), "\n")
			}
		}
		t.Fatal("no weight line")
		return ""
	})
	write("plain.yaml", func(string) string { return v2rayYAML })
	write("garbage.yaml", func(string) string { return "v2ray: [unclosed" })

	tests := []struct {
		name    string
		keyFile string
		ref     Ref
		want    []string
		is      error
	}{
		{"wrong age key", wrong.File, "sops:v2ray.yaml#v2ray/user_id", []string{"v2ray.yaml", "none of the age identities in " + wrong.File, key.Recipient}, nil},
		{"no key file", filepath.Join(dir, "missing.txt"), "sops:v2ray.yaml#v2ray/user_id", []string{"open age key file", "missing.txt"}, os.ErrNotExist},
		{"not an age key file", enc, "sops:v2ray.yaml#v2ray/user_id", []string{"parse age key file"}, nil},
		{"missing file", key.File, "sops:nope.yaml#v2ray/user_id", []string{"nope.yaml"}, ErrNotFound},
		{"missing key", key.File, "sops:v2ray.yaml#v2ray/password", []string{"no key v2ray/password"}, ErrNotFound},
		{"not a value", key.File, "sops:v2ray.yaml#v2ray", []string{"not a single value"}, nil},
		{"swapped values", key.File, "sops:swapped.yaml#v2ray/user_id", []string{"swapped.yaml", "server_address"}, ErrSOPSMAC},
		{"edited clear value", key.File, "sops:edited.yaml#v2ray/user_id", []string{"does not match the MAC"}, ErrSOPSMAC},
		{"dropped value", key.File, "sops:dropped.yaml#v2ray/user_id", []string{"does not match the MAC"}, ErrSOPSMAC},
		{"not encrypted", key.File, "sops:plain.yaml#v2ray/user_id", []string{"not a SOPS file"}, nil},
		{"not yaml", key.File, "sops:garbage.yaml#v2ray/user_id", []string{"garbage.yaml", "parse"}, nil},
	}
	secretsInFile := []string{"vpn.example.com", "6b1a2c1e", "E59WjnvZ", "0123456789abcdef"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Resolver{BaseDir: dir, AgeKeyFile: tt.keyFile, Getenv: envMap(nil)}
			_, err := r.Resolve(context.Background(), tt.ref)
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			for _, s := range secretsInFile {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals a secret value", err)
				}
			}
		})
	}
}

// FuzzDecryptSOPS feeds mangled SOPS files (seeded from testdata, made by
// the real sops tool) to the reader: it must fail cleanly, never panic, and
// never accept a file whose content changed.
func FuzzDecryptSOPS(f *testing.F) {
	keys, err := os.ReadFile("testdata/sops-keys.txt")
	if err != nil {
		f.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(keys))
	if err != nil {
		f.Fatal(err)
	}
	seeds, _ := filepath.Glob("testdata/sops-*.yaml")
	jsonSeeds, _ := filepath.Glob("testdata/sops-*.json")
	originals := map[string]bool{}
	for _, p := range append(seeds, jsonSeeds...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := decryptSOPS(b, ids, "testdata"); err != nil {
			f.Fatalf("seed %s: %v", p, err)
		}
		originals[string(b)] = true
		f.Add(b)
	}
	f.Add([]byte("sops: {}\n"))
	f.Add([]byte("a: ENC[AES256_GCM,data:,iv:,tag:,type:str]\nsops:\n  age: [{recipient: x, enc: y}]\n"))
	// Attack inputs: an alias bomb, deep nesting, a huge iv, an age stanza
	// that is not armored, a scrypt stanza, and non-mapping documents.
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'j'; i++ {
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	f.Add([]byte(bomb + "sops:\n  age: [{recipient: x, enc: y}]\n"))
	f.Add([]byte(strings.Repeat("[", 300) + strings.Repeat("]", 300)))
	if seed, err := os.ReadFile("testdata/sops-v2ray.yaml"); err == nil {
		// Past the walker's depth limit inside a file whose data key opens.
		deep := "deep: " + strings.Repeat("[", maxSOPSDepth+2) + strings.Repeat("]", maxSOPSDepth+2) + "\nv2ray:\n"
		f.Add([]byte(strings.Replace(string(seed), "v2ray:\n", deep, 1)))
	}
	f.Add([]byte(strings.Repeat("a:\n ", 300) + "b\nsops: {}\n"))
	f.Add([]byte("a: ENC[AES256_GCM,data:AA==,iv:" + strings.Repeat("A", 4096) + ",tag:AA==,type:str]\nsops:\n  age: [{recipient: x, enc: y}]\n"))
	f.Add([]byte("sops:\n  age:\n    - recipient: x\n      enc: |\n        -----BEGIN AGE ENCRYPTED FILE-----\n        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlwdCBBQUFBIDMwCkFBQUEKLS0tIEFBQUEK\n        -----END AGE ENCRYPTED FILE-----\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("\"just a string\""))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := decryptSOPS(data, ids, "testdata")
		if err != nil || originals[string(data)] {
			return
		}
		// Accepted input that is not a seed: only whitespace, comment or
		// formatting changes that leave every value and the MAC intact.
		if doc == nil {
			t.Fatal("nil document without error")
		}
	})
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func BenchmarkDecryptSOPS(b *testing.B) {
	keys, _ := os.ReadFile("testdata/sops-keys.txt")
	ids, err := age.ParseIdentities(bytes.NewReader(keys))
	if err != nil {
		b.Fatal(err)
	}
	data, _ := os.ReadFile("testdata/sops-v2ray.yaml")
	for i := 0; i < b.N; i++ {
		if _, err := decryptSOPS(data, ids, "testdata"); err != nil {
			b.Fatal(err)
		}
	}
}
