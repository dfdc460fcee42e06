// Package backend owns where repository files live: a local directory or a
// directory on an SFTP server. Backends store opaque, already encrypted
// files by type and name, and write each one atomically (temporary file,
// fsync, rename, directory fsync) so a crash never leaves a half-written
// file under its final name. The local backend can also stage a file and
// commit it later (Stager), the wait for fsync going through io_uring so
// that it holds no thread, for packs written while the rest of a backup
// keeps the cores busy.
//
// The storage is not trusted: whole-file reads are capped by file type
// (FileLimit) before anything is read, FIFOs and devices under repository
// names are refused without blocking, and every SFTP operation has a
// deadline (SFTPOptions.Timeout, SFTPOptions.OpTimeout).
//
// Backends do not know about encryption, packs or indexes; package
// repository does.
package backend
