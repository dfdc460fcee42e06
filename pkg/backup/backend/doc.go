// Package backend owns where repository files live: a local directory or a
// directory on an SFTP server. Backends store opaque, already encrypted
// files by type and name, and write each one atomically (temporary file,
// fsync, rename, directory fsync) so a crash never leaves a half-written
// file under its final name.
//
// Backends do not know about encryption, packs or indexes; package
// repository does.
package backend
