// Package repository owns the on-disk format of a backup repository (see
// docs/backup-format.md): the encrypted config, passphrase-wrapped key
// files, pack files of encrypted and compressed blobs, the index mapping
// blobs to packs, snapshots, trees and locks. It writes in crash-safe
// order (packs, then the index naming them, then the snapshot naming the
// tree) so that an interrupted writer leaves a consistent repository.
//
// It does not walk file systems, restore files or decide retention; see
// packages archiver, restorer and forget.
package repository
