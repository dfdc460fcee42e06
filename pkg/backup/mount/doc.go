// Package mount owns the read-only FUSE view of a backup repository
// behind `hostd backup mount`: snapshots/ID/ (the files of each snapshot
// with the metadata a restore gives them), snapshots/latest, hosts/HOST/
// and tags/TAG/. File contents are read lazily, blob by blob, through
// the repository, with a small cache of recently read blobs and trees.
//
// It does not open, lock or close the repository (the caller does, and
// holds a shared lock while mounted, so prune does not remove data in
// use) and does not handle signals. The storage is untrusted: every
// blob is authenticated by the repository layer, a file whose blobs do
// not add up to its size, or whose blob is missing, fails its reads
// with EIO, and directories nest at most Options.Limits.MaxDepth deep.
package mount
