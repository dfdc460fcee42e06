// Package archiver owns the backup pipeline: walk the source paths
// (applying excludes, CACHEDIR.TAG, exclude-if-present and one-file-system),
// read and chunk changed files, hash, compress, encrypt and pack chunks in
// parallel, build one tree blob per directory, and finally save the
// snapshot. A file cache (path, size, mtime, ctime, inode) lets an
// unchanged file skip reading.
//
// Stages are goroutines under one errgroup fed by channels: the walker
// queues files to file workers, file workers cut and hash chunks and add
// them to the repository's open segment (which compresses full segments
// in the background; in repositories before format version 3 chunks go
// to blob savers instead), and a tree finisher saves directories in
// post-order. The walker reads directories with getdents and stats
// entries relative to their directory; a regular file the cache does not
// know is not stat'ed there at all: the file worker takes its metadata
// and extended attributes from the open file. On cancellation everything
// already packed is flushed with its index (a checkpoint) and no
// snapshot is written.
//
// It does not decide retention or restore files.
package archiver
