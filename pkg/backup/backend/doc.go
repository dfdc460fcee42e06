// Package backend owns where repository files live: a local directory, a
// directory on an SFTP server, a prefix of an S3 bucket (s3.go), a
// server speaking restic's REST protocol (rest.go), or any rclone remote
// through `rclone serve restic --stdio` (rclone.go, the same REST client
// over rclone's standard input and output). Backends store opaque,
// already encrypted files by type and name, and write each one
// atomically (local and SFTP: temporary file, fsync, rename, directory
// fsync; S3 and REST: one request the server applies whole) so a crash
// never leaves a half-written file under its final name. The local backend can also stage a file and
// commit it later (Stager), the wait for fsync going through io_uring so
// that it holds no thread, for packs written while the rest of a backup
// keeps the cores busy.
//
// The storage is not trusted: whole-file reads are capped by file type
// (FileLimit) before anything is read, FIFOs and devices under repository
// names are refused without blocking, and every SFTP operation has a
// deadline (SFTPOptions.Timeout, SFTPOptions.OpTimeout). The HTTP
// backends share remote.go: a connect deadline, an idle watchdog on
// every request (HTTPOptions.OpTimeout), retries with service.Backoff on
// 5xx, 429, timeouts and dropped connections, ranged reads checked
// against the range asked for, bounded error bodies and listings, and
// credentials only from secret references, never in the URL.
//
// Backends do not know about encryption, packs or indexes; package
// repository does.
package backend
