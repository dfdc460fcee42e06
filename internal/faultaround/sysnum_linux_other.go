//go:build linux && !amd64 && !arm64 && !riscv64 && !loong64

package faultaround

// sysUserfaultfd is not known here: the package does nothing.
const sysUserfaultfd = -1
