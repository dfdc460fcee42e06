// Package importer writes the snapshots of another backup program's
// repository into a hostd repository: Import walks a Source's snapshots
// and directories, re-cuts file contents with the destination's chunker
// and stores them as a backup does, and writes one hostd snapshot per
// source snapshot.
//
// It owns the conversion (caching converted directories and contents,
// the walk's budgets, resuming by skipping snapshots already imported).
// It does not read any foreign format itself: each source lives in a
// subpackage (restic), which owns decoding, authentication and the caps
// on what it reads. See docs/backup.md, "Importing from restic".
package importer
