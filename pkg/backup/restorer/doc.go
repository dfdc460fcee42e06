// Package restorer owns bringing a snapshot back onto a file system:
// regular files byte for byte (sparse ones as sparse), empty files,
// directories, symlinks, hard links as hard links, FIFOs and device nodes
// (as root), modes, owners (by name where the name exists, else by
// number), timestamps and extended attributes. File contents are written
// by parallel workers (from object storage and REST servers, as each
// pack's stream arrives: see RemoteWorkers); directory metadata is
// applied last, deepest first.
// A restore of include paths brings back what is below them and the
// directories leading to them, those with their metadata too. The
// snapshot is planned before anything is written, so a restore whose
// arguments fail (a non-empty target, includes that match nothing)
// leaves the target as it was. Each file is written under a temporary
// name (TempPrefix) and renamed into place once every blob of it is
// verified; a file with damaged or missing data is left out and named,
// and the summary counts only what was brought back. The walk that plans
// the restore is bounded (repository.Limits), so a hostile DAG of trees
// fails with a clear error instead of growing the plan without end.
//
// It does not read source file systems or change the repository.
package restorer
