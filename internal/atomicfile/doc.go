// Package atomicfile replaces files so that a crash (kill -9, power loss)
// at any moment leaves either the old contents or the new ones, never a
// mix: write a temporary file in the same directory, fsync it, rename it
// over the target, fsync the directory.
//
// It owns only that write order; what the files hold is the callers'
// business.
package atomicfile
