package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/safefile"
)

// This file is a decrypt-only reader of SOPS files (YAML or JSON) whose
// data key is encrypted to age recipients. It verifies the file's MAC the
// way sops does. It deliberately supports nothing else (no KMS, PGP or
// Vault key groups): github.com/getsops/sops/v3/decrypt would pull in every
// cloud SDK for that. See docs/proxy.md for the measured difference.

// ErrSOPSMAC is wrapped by errors for SOPS files whose content does not
// match their MAC: edited by hand or tampered with.
var ErrSOPSMAC = errors.New("sops MAC mismatch")

// resolveSOPS decrypts a SOPS file and returns the value at keyPath
// ("v2ray/server_address": mapping keys separated by '/').
func (r *Resolver) resolveSOPS(ctx context.Context, file, keyPath string) ([]byte, error) {
	data, err := safefile.Read(file, SOPSFileLimit)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no sops file %s: %w", file, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read sops file: %w", err) // names file
	}
	ids, idSource, err := r.ageIdentities()
	if err != nil {
		return nil, fmt.Errorf("sops file %s: %w", file, err)
	}
	doc, err := decryptSOPS(data, ids, idSource)
	if err != nil {
		return nil, fmt.Errorf("sops file %s: %w", file, err)
	}
	v, err := doc.lookup(keyPath)
	if err != nil {
		return nil, fmt.Errorf("sops file %s: %w", file, err)
	}
	return v, nil
}

// ageIdentities reads the age identities: Resolver.AgeKeyFile, else
// $SOPS_AGE_KEY_FILE, else $SOPS_AGE_KEY (the key itself), else sops's
// default $XDG_CONFIG_HOME/sops/age/keys.txt. It returns where they came
// from, for error messages.
func (r *Resolver) ageIdentities() ([]age.Identity, string, error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	file := r.AgeKeyFile
	if file == "" {
		file = getenv("SOPS_AGE_KEY_FILE")
	}
	if file == "" {
		if k := getenv("SOPS_AGE_KEY"); k != "" {
			if len(k) > safefile.KeyFileLimit {
				return nil, "", fmt.Errorf("$SOPS_AGE_KEY: %w: larger than %d KiB", ErrTooLarge, safefile.KeyFileLimit>>10)
			}
			ids, err := age.ParseIdentities(strings.NewReader(k))
			if err != nil {
				return nil, "", fmt.Errorf("parse age identities in $SOPS_AGE_KEY: %w", err)
			}
			return ids, "$SOPS_AGE_KEY", nil
		}
		dir := getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home := getenv("HOME"); home != "" {
				dir = filepath.Join(home, ".config")
			}
		}
		if dir == "" {
			return nil, "", errors.New("no age identities: set secrets.age_key_file or $SOPS_AGE_KEY_FILE")
		}
		file = filepath.Join(dir, "sops", "age", "keys.txt")
	}
	data, err := safefile.Read(file, safefile.KeyFileLimit)
	if err != nil {
		return nil, "", fmt.Errorf("open age key file (set secrets.age_key_file or $SOPS_AGE_KEY_FILE): %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		// age's parse errors quote no key material, only line numbers.
		return nil, "", fmt.Errorf("parse age key file %s: %w", file, err)
	}
	return ids, file, nil
}

// sopsDoc is a decrypted SOPS document.
type sopsDoc struct {
	root *yaml.Node // mapping node, "sops" key removed, values decrypted
}

// lookup returns the scalar at keyPath.
func (d *sopsDoc) lookup(keyPath string) ([]byte, error) {
	n := d.root
	var walked []string
	for _, k := range strings.Split(strings.Trim(keyPath, "/"), "/") {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("key %s: %q is not a mapping: %w", keyPath, strings.Join(walked, "/"), ErrNotFound)
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		walked = append(walked, k)
		if next == nil {
			return nil, fmt.Errorf("no key %s: %w", strings.Join(walked, "/"), ErrNotFound)
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("key %s is not a single value", keyPath)
	}
	return []byte(n.Value), nil
}

// sopsMetadata is the part of the "sops" key this reader uses.
type sopsMetadata struct {
	Age []struct {
		Recipient string `yaml:"recipient"`
		Enc       string `yaml:"enc"`
	} `yaml:"age"`
	LastModified     string `yaml:"lastmodified"`
	MAC              string `yaml:"mac"`
	MACOnlyEncrypted bool   `yaml:"mac_only_encrypted"`
	Version          string `yaml:"version"`
}

// macOnlyEncryptedInit starts the MAC of files with mac_only_encrypted,
// as in sops: SHA-256("sops").
var macOnlyEncryptedInit = sha256.Sum256([]byte("sops"))

// decryptSOPS decrypts every value of a SOPS document and checks its MAC.
// Errors never include decrypted values.
func decryptSOPS(data []byte, ids []age.Identity, idSource string) (*sopsDoc, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a SOPS file: the top level is not a mapping")
	}
	root := doc.Content[0]
	var meta sopsMetadata
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "sops" {
			if err := root.Content[i+1].Decode(&meta); err != nil {
				return nil, fmt.Errorf("sops metadata (line %d): %w", root.Content[i+1].Line, err)
			}
			root.Content = append(root.Content[:i:i], root.Content[i+2:]...)
			found = true
			break
		}
	}
	if !found {
		return nil, errors.New("not a SOPS file: no sops metadata key")
	}
	if len(meta.Age) == 0 {
		return nil, errors.New("the file's data key is not encrypted to any age recipient (only age is supported)")
	}
	key, err := dataKey(meta, ids, idSource)
	if err != nil {
		return nil, err
	}

	h := sha512.New()
	if meta.MACOnlyEncrypted {
		h.Write(macOnlyEncryptedInit[:])
	}
	w := &walker{key: key, macOnlyEncrypted: meta.MACOnlyEncrypted, mac: h, budget: maxSOPSNodes}
	if err := w.node(root, nil, 0); err != nil {
		return nil, err
	}

	lm, err := time.Parse(time.RFC3339, meta.LastModified)
	if err != nil {
		return nil, fmt.Errorf("sops metadata lastmodified: not an RFC 3339 time")
	}
	if meta.MAC == "" {
		return nil, fmt.Errorf("%w: the file has no MAC", ErrSOPSMAC)
	}
	stored, err := decryptValue(meta.MAC, key, lm.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt MAC: %v", ErrSOPSMAC, err)
	}
	want := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
	if s, ok := stored.(string); !ok || subtle.ConstantTimeCompare([]byte(s), []byte(want)) != 1 {
		return nil, fmt.Errorf("%w: the content does not match the MAC (edited without sops?)", ErrSOPSMAC)
	}
	return &sopsDoc{root: root}, nil
}

// dataKey decrypts the file's data key with the first age stanza one of
// the identities opens.
func dataKey(meta sopsMetadata, ids []age.Identity, idSource string) ([]byte, error) {
	var recipients []string
	var lastErr error
	for _, a := range meta.Age {
		recipients = append(recipients, a.Recipient)
		rd, err := age.Decrypt(armor.NewReader(strings.NewReader(a.Enc)), ids...)
		if err != nil {
			lastErr = err
			continue
		}
		key, err := io.ReadAll(rd)
		if err != nil {
			lastErr = err
			continue
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("data key for %s is %d bytes, want 32", a.Recipient, len(key))
		}
		return key, nil
	}
	var nomatch *age.NoIdentityMatchError
	if errors.As(lastErr, &nomatch) {
		return nil, fmt.Errorf("none of the age identities in %s can decrypt it (the file is encrypted to %s)", idSource, strings.Join(recipients, ", "))
	}
	return nil, fmt.Errorf("decrypt data key with the age identities in %s: %w", idSource, lastErr)
}

// Limits of a document walk: YAML aliases can make a small file expand
// exponentially (or loop), which a decoder of files from elsewhere must not
// follow without bound.
const (
	maxSOPSNodes = 1 << 20
	maxSOPSDepth = 256
)

// walker decrypts a document in place and computes its MAC.
type walker struct {
	key              []byte
	macOnlyEncrypted bool
	mac              io.Writer
	budget           int
}

// node walks n in document order like sops: it decrypts every ENC[...]
// scalar in place (additional data: the mapping keys on the path, each
// followed by ':') and feeds the values into the MAC.
func (w *walker) node(n *yaml.Node, path []string, depth int) error {
	w.budget--
	if w.budget < 0 || depth > maxSOPSDepth {
		return errors.New("document too large or too deeply nested (YAML aliases?)")
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := w.node(n.Content[i+1], append(path[:len(path):len(path)], n.Content[i].Value), depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := w.node(c, path, depth+1); err != nil {
				return err
			}
		}
	case yaml.AliasNode:
		if n.Alias == nil {
			return errors.New("YAML alias without anchor")
		}
		return w.node(n.Alias, path, depth+1)
	case yaml.ScalarNode:
		var plain any
		encrypted := n.Tag == "!!str" && strings.HasPrefix(n.Value, "ENC[AES256_GCM,")
		if encrypted {
			var err error
			aad := strings.Join(path, ":") + ":"
			plain, err = decryptValue(n.Value, w.key, aad)
			if err != nil {
				return fmt.Errorf("decrypt value of %s (line %d): %w", strings.Join(path, "/"), n.Line, err)
			}
			text, err := macBytes(plain)
			if err != nil {
				return fmt.Errorf("value of %s (line %d): %w", strings.Join(path, "/"), n.Line, err)
			}
			if b, ok := plain.(bool); ok {
				text = []byte(strconv.FormatBool(b))
			}
			n.Value = string(text)
			n.Tag, n.Style = "!!str", 0
		} else if err := n.Decode(&plain); err != nil {
			return fmt.Errorf("value of %s (line %d): %w", strings.Join(path, "/"), n.Line, err)
		}
		if !w.macOnlyEncrypted || encrypted {
			b, err := macBytes(plain)
			if err != nil {
				return fmt.Errorf("value of %s (line %d): %w", strings.Join(path, "/"), n.Line, err)
			}
			w.mac.Write(b)
		}
	}
	return nil
}

// macBytes is sops's ToBytes: how a value enters the MAC.
func macBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		if v {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case []byte:
		return v, nil
	case time.Time:
		return v.MarshalText()
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

var encRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$`)

// decryptValue opens one ENC[AES256_GCM,data:..,iv:..,tag:..,type:..] value.
func decryptValue(s string, key []byte, aad string) (any, error) {
	m := encRE.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("malformed ENC[AES256_GCM,...] value")
	}
	var parts [3][]byte
	for i := range parts {
		b, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil {
			return nil, fmt.Errorf("malformed ENC[AES256_GCM,...] value: %s is not base64", [3]string{"data", "iv", "tag"}[i])
		}
		parts[i] = b
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(iv) == 0 {
		return nil, errors.New("malformed ENC[AES256_GCM,...] value: empty iv")
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, iv, append(bytes.Clone(data), tag...), []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (wrong data key, or the value was moved or edited)", ErrSOPSMAC)
	}
	switch typ := m[4]; typ {
	case "str":
		return string(plain), nil
	case "int":
		n, err := strconv.Atoi(string(plain))
		if err != nil {
			return nil, errors.New("value of type int is not an integer")
		}
		return n, nil
	case "float":
		f, err := strconv.ParseFloat(string(plain), 64)
		if err != nil {
			return nil, errors.New("value of type float is not a number")
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(string(plain))
		if err != nil {
			return nil, errors.New("value of type bool is not a boolean")
		}
		return b, nil
	case "bytes":
		return plain, nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText(plain); err != nil {
			return nil, errors.New("value of type time is not a time")
		}
		return t, nil
	case "comment":
		return string(plain), nil
	default:
		return nil, fmt.Errorf("unknown value type %q", typ)
	}
}
