package repository

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hostd/hostd/pkg/backup/chunker"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// Config is the repository's fixed parameters, stored encrypted in the
// file "config".
type Config struct {
	Version     int            `json:"version"`
	ID          ID             `json:"id"`
	Chunker     chunker.Params `json:"chunker"`
	Compression int            `json:"compression"` // zstd level 1..19; 0 stores uncompressed
	PackSize    int            `json:"pack_size"`   // target pack size in bytes
}

// Repository format versions. Version 2 changed the cipher of every blob
// and encrypted file; version 3 keeps version 2's cipher and packs small
// blobs together into shared segments (pack header format 2).
const (
	VersionXChaCha = 1 // XChaCha20-Poly1305
	VersionAESGCM  = 2 // AES-256-GCM
	VersionGrouped = 3 // AES-256-GCM, small blobs grouped into segments
	CurrentVersion = VersionGrouped
)

// Grouped reports whether packs of this version may hold segments of
// several blobs (and so use pack header format 2).
func (c Config) Grouped() bool { return c.Version >= VersionGrouped }

// Cipher returns the cipher a repository of this version encrypts with.
func (c Config) Cipher() crypto.Cipher {
	if c.Version == VersionXChaCha {
		return crypto.XChaCha20Poly1305
	}
	return crypto.AES256GCM
}

// DefaultConfig: current format, zstd level 3, 512 KiB average chunks,
// 4 MiB packs.
func DefaultConfig() Config {
	return Config{Version: CurrentVersion, ID: crypto.RandomID(), Chunker: chunker.DefaultParams(), Compression: 3, PackSize: 4 << 20}
}

// Validate checks parameters read from an untrusted file.
func (c Config) Validate() error {
	if c.Version < VersionXChaCha || c.Version > VersionGrouped {
		return fmt.Errorf("unsupported repository version %d", c.Version)
	}
	if err := c.Chunker.Validate(); err != nil {
		return err
	}
	if c.Compression < 0 || c.Compression > 22 {
		return fmt.Errorf("compression level %d out of range 0..22", c.Compression)
	}
	if c.PackSize < 1<<16 || c.PackSize > 1<<30 {
		return fmt.Errorf("pack size %d out of range 64 KiB..1 GiB", c.PackSize)
	}
	return nil
}

// DecodeConfig parses and validates config JSON.
func DecodeConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("decode config: %w", err)
	}
	return c, nil
}

// KeyFile is the plaintext JSON of a file under keys/: argon2id
// parameters and the master key sealed with the key they derive.
type KeyFile struct {
	Created  time.Time        `json:"created"`
	Hostname string           `json:"hostname,omitempty"`
	Username string           `json:"username,omitempty"`
	KDF      crypto.KDFParams `json:"kdf"`
	Data     []byte           `json:"data"`
}

// maxSealedKey bounds the sealed master key of a key file: its JSON is
// under 200 bytes.
const maxSealedKey = 4 << 10

// DecodeKeyFile parses and validates key file JSON (read from storage no
// one authenticated yet). Errors wrap ErrKeyFileDamaged for a structure
// that is not a key file's, or crypto.ErrKDFOutOfRange for argon2id
// parameters out of bounds; either way nothing has been derived.
func DecodeKeyFile(b []byte) (*KeyFile, error) {
	var k KeyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%w: not a key file: %w", ErrKeyFileDamaged, err)
	}
	if err := k.KDF.Validate(); err != nil {
		return nil, err
	}
	if len(k.Data) < crypto.Overhead+1 || len(k.Data) > maxSealedKey {
		return nil, fmt.Errorf("%w: sealed key of %d bytes, want %d..%d", ErrKeyFileDamaged, len(k.Data), crypto.Overhead+1, maxSealedKey)
	}
	return &k, nil
}
