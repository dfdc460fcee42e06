// Package safefile reads files that come from outside hostd (secrets,
// credentials, key files, config files) with bounds: regular files only, a
// size cap, and an error that names the source.
//
// A FIFO, a device or a socket behind a secret reference could block a
// read forever or feed it without end (file:/dev/zero); a huge regular file
// could exhaust memory. Read refuses all of them before reading a byte.
package safefile
