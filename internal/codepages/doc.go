// Package codepages releases the pages of hostd's own executable that the
// process has mapped but no longer runs.
//
// A Go executable is mapped whole, and, unless package faultaround turned
// it off, the kernel maps page-cache pages around every page a process
// touches (fault-around, 64 KiB by default).
// Start-up alone, with hundreds of package initialisers spread over the
// binary, leaves most of it resident, although the running daemon, or a
// backup in progress, uses about half of it. Releasing the read-only
// mappings of the executable (madvise MADV_DONTNEED) drops those pages
// from the process' resident set; they stay in the page cache, and the
// code that still runs maps them back on its next fault. Writable
// mappings, and read-only ones holding private pages (the relocated
// read-only data of a position-independent build), are never released:
// those pages exist nowhere else.
package codepages
