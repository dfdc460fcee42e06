// Package crypto owns the cryptographic primitives of a backup repository:
// the master key (encryption key, keyed-hash key for content IDs and the
// chunker seed), authenticated encryption of blobs and metadata files with
// AES-256-GCM (repositories of format version 2) or XChaCha20-Poly1305
// (version 1), content IDs with keyed BLAKE3, and the argon2id
// derivation that turns a passphrase into the key wrapping the master key.
//
// It does not know about files, packs or the repository layout; see
// package repository for that.
package crypto
