// Command hostd is one supervised daemon for a host's proxy client,
// backups, metrics, audio policy, network state and DNS, and Docker
// pruning, plus the CLI that inspects and drives it.
package main
