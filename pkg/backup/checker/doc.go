// Package checker owns repository verification: every index file
// readable, every indexed pack present, its header read, authenticated
// and matching the index (which fixes the pack's exact size), unindexed
// packs reported, every snapshot readable, every tree loadable (each
// once, however many directories name it) and every blob a snapshot
// needs indexed; with read-data (or a subset of packs), every
// pack's hash, header and blob decrypted and verified. Damaged packs are
// reported with the snapshots and files they affect.
//
// It never changes the repository.
package checker
