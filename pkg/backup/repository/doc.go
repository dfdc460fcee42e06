// Package repository owns the on-disk format of a backup repository (see
// docs/backup-format.md): the encrypted config, passphrase-wrapped key
// files, pack files of encrypted and compressed blobs, the index mapping
// blobs to packs, snapshots, trees and locks. It writes in crash-safe
// order (packs, then the index naming them, then the snapshot naming the
// tree) so that an interrupted writer leaves a consistent repository.
//
// It does not walk file systems, restore files or decide retention; see
// packages archiver, restorer and forget.
//
// Files: repository.go holds the Repository type, its options,
// constructor and accessors; open.go creates and opens repositories;
// keys.go finds, adds and removes key files (config.go decodes them,
// with the config); files.go encrypts, saves, loads and lists metadata
// files; save.go stores blobs, grouping them into segments and segments
// into packs, and flushes; load.go reads blobs back and decodes
// segments; pack.go is the pack format and reads packs and their
// headers; index.go is the in-memory index and the index files; tree.go
// and snapshot.go are those formats and their loading and saving;
// walk.go walks trees within budgets; lock.go holds the repository
// locks; blob.go, buflist.go and segcache.go hold blob names, pooled
// buffers and the cache of decoded segments.
package repository
