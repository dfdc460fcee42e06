// Package faultaround keeps the kernel from mapping pages of hostd's
// executable that hostd never touches. It has no API: importing it, as
// cmd/hostd does, is what turns it on, as the process starts.
//
// When a process touches a page of a file it has mapped, Linux maps the
// page-cache pages around it as well (fault-around, 64 KiB by default).
// hostd is one large executable whose running code is spread over all of
// it: hundreds of package initialisers at start-up, and later each
// service's code between the others'. Fault-around made the resident set
// three to four times the executable pages hostd uses: about 26 MiB
// mapped by start-up before the first line of main, and 17-19 MiB for a
// daemon collecting metrics that touches about 6 MiB of its executable.
//
// The kernel has no per-mapping switch for fault-around, but skips it in
// a mapping registered with userfaultfd(2) for write-protect tracking,
// whose pages must be mapped one at a time. The package registers the
// executable's read-only mappings in the asynchronous mode (Linux 6.7,
// UFFD_FEATURE_WP_ASYNC), where the kernel resolves write-protect faults
// by itself and no thread serves the descriptor; these mappings are
// never written anyway. Only faults from user mode are tracked
// (UFFD_USER_MODE_ONLY), which an unprivileged process may ask for. The
// descriptor stays open, close-on-exec, for the life of the process: the
// registration ends with it.
//
// It runs in a package initialiser, the one place early enough: Go
// initialises a package as soon as its dependencies are, in import path
// order, and this one depends on syscall alone, so it registers before
// almost every other package's initialiser runs. Where the system says no
// (a kernel before 6.7, a seccomp filter such as Docker's default, a
// sandbox without userfaultfd) nothing changes. HOSTD_FAULT_AROUND=on in
// the environment leaves the kernel's fault-around in place.
//
// What stays the same: the pages are in the page cache either way (and
// charged to the same cgroup); only the process' page tables, and so its
// resident set, hold fewer of them. Each page of code run for the first
// time, or after package codepages released it, costs its own page fault
// instead of one per 64 KiB, a few milliseconds over a start-up.
package faultaround
