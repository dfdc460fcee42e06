// Package restic reads restic repositories (format versions 1 and 2) on
// a local file system as an importer.Source: key files (scrypt), the
// config, index files, snapshots, trees and data blobs (AES-256-CTR with
// Poly1305-AES, zstd in version 2), following restic's "Repository
// Format" reference.
//
// The repository is treated as hostile: every file is read under a cap
// checked first, scrypt parameters are bounded before any derivation,
// every MAC is verified before decryption, every blob is checked
// against its SHA-256 ID and its index length, and the decoders have
// budgets and are fuzzed. It never writes to the repository and takes
// no lock in it.
package restic
