package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/hostd/hostd/internal/testenv"
)

// sopsVersion is the sops release the tests encrypt with.
const sopsVersion = "v3.13.3"

var sopsOnce struct {
	sync.Once
	path string
	err  error
}

// sopsTool returns the real sops binary, built once from its Go module into
// the user cache directory (reused by later runs).
func sopsTool(t *testing.T) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go")
	sopsOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			sopsOnce.err = err
			return
		}
		dir := filepath.Join(cache, "hostd-test", "sops-"+sopsVersion)
		bin := filepath.Join(dir, "sops")
		if _, err := os.Stat(bin); err == nil {
			sopsOnce.path = bin
			return
		}
		cmd := exec.Command(goBin, "install", "github.com/getsops/sops/v3/cmd/sops@"+sopsVersion)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			sopsOnce.err = errors.New(err.Error() + ": " + string(out))
			return
		}
		sopsOnce.path = bin
	})
	testenv.Require(t, "sops "+sopsVersion+" (go install)", sopsOnce.err)
	return sopsOnce.path
}

// ageKey is a fresh age identity written to a key file.
type ageKey struct {
	file      string
	recipient string
}

func newAgeKey(t *testing.T, dir, name string) ageKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("# test key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return ageKey{file: p, recipient: id.Recipient().String()}
}

// sopsEncrypt encrypts plain (of the given type) to the recipients with
// the real sops tool and returns the encrypted file's path.
func sopsEncrypt(t *testing.T, dir, name, typ, plain string, args []string, recipients ...string) string {
	t.Helper()
	in := filepath.Join(dir, name+".plain."+typ)
	if err := os.WriteFile(in, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	cmdArgs := append([]string{"encrypt", "--age", strings.Join(recipients, ","), "--input-type", typ, "--output-type", typ}, args...)
	cmd := exec.Command(sopsTool(t), append(cmdArgs, in)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops encrypt: %v: %s", err, stderr.String())
	}
	os.Remove(in)
	p := filepath.Join(dir, name+"."+typ)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

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
	key := newAgeKey(t, dir, "keys.txt")
	other := newAgeKey(t, dir, "other.txt")
	yamlFile := sopsEncrypt(t, dir, "v2ray", "yaml", v2rayYAML, nil, other.recipient, key.recipient)
	jsonFile := sopsEncrypt(t, dir, "v2ray", "json", v2rayJSON, nil, key.recipient)
	macOnly := sopsEncrypt(t, dir, "maconly", "yaml", v2rayYAML, []string{"--mac-only-encrypted", "--encrypted-regex", "^(user_id|public_key|short_id)$"}, key.recipient)
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
		{"mac only encrypted", Ref("sops:maconly.yaml#v2ray/user_id"), "6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d"},
		{"mac only encrypted clear value", Ref("sops:maconly.yaml#v2ray/server_address"), "vpn.example.com"},
	}
	r := &Resolver{BaseDir: dir, Getenv: envMap(map[string]string{"SOPS_AGE_KEY_FILE": key.file})}
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
	inline, _ := os.ReadFile(other.file)
	for name, r := range map[string]*Resolver{
		"age_key_file": {BaseDir: dir, AgeKeyFile: other.file, Getenv: envMap(nil)},
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
	key := newAgeKey(t, dir, "keys.txt")
	wrong := newAgeKey(t, dir, "wrong.txt")
	enc := sopsEncrypt(t, dir, "v2ray", "yaml", v2rayYAML, nil, key.recipient)
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
	swapped := write("swapped.yaml", func(string) string {
		ls := append([]string(nil), lines...)
		a, _ := strings.CutPrefix(strings.TrimSpace(ls[addr]), "server_address:")
		p, _ := strings.CutPrefix(strings.TrimSpace(ls[port]), "server_port:")
		ls[addr] = "    server_address:" + p
		ls[port] = "    server_port:" + a
		return strings.Join(ls, "\n")
	})
	edited := write("edited.yaml", func(s string) string { return strings.Replace(s, "kept in clear", "edited in clear", 1) })
	dropped := write("dropped.yaml", func(s string) string {
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
		{"wrong age key", wrong.file, "sops:v2ray.yaml#v2ray/user_id", []string{"v2ray.yaml", "none of the age identities in " + wrong.file, key.recipient}, nil},
		{"no key file", filepath.Join(dir, "missing.txt"), "sops:v2ray.yaml#v2ray/user_id", []string{"open age key file", "missing.txt"}, os.ErrNotExist},
		{"not an age key file", enc, "sops:v2ray.yaml#v2ray/user_id", []string{"parse age key file"}, nil},
		{"missing file", key.file, "sops:nope.yaml#v2ray/user_id", []string{"nope.yaml"}, ErrNotFound},
		{"missing key", key.file, "sops:v2ray.yaml#v2ray/password", []string{"no key v2ray/password"}, ErrNotFound},
		{"not a value", key.file, "sops:v2ray.yaml#v2ray", []string{"not a single value"}, nil},
		{"swapped values", key.file, "sops:swapped.yaml#v2ray/user_id", []string{"swapped.yaml", "server_address"}, ErrSOPSMAC},
		{"edited clear value", key.file, "sops:edited.yaml#v2ray/user_id", []string{"does not match the MAC"}, ErrSOPSMAC},
		{"dropped value", key.file, "sops:dropped.yaml#v2ray/user_id", []string{"does not match the MAC"}, ErrSOPSMAC},
		{"not encrypted", key.file, "sops:plain.yaml#v2ray/user_id", []string{"not a SOPS file"}, nil},
		{"not yaml", key.file, "sops:garbage.yaml#v2ray/user_id", []string{"garbage.yaml", "parse"}, nil},
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
