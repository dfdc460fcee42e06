package crypto

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prepareKDFMemory readies n bytes of the Go heap for argon2id's block
// array before argon2.IDKey allocates it.
//
// argon2id reads every block of a fresh array before it writes it, so on
// new memory each 4 KiB page first maps the shared zero page and then
// takes a copy-on-write fault, whose TLB flush interrupts every other CPU
// running the derivation. Measured on two cores, that made a derivation
// with hostd's default parameters (32 MiB, two lanes) take about 120 ms,
// of which 25 ms is argon2id itself. Populating an array of the same
// size for writing, in one madvise call, and freeing it leaves the heap
// with mapped, writable pages that the allocator hands to argon2id's
// allocation right after.
func prepareKDFMemory(n int) {
	if n <= 0 {
		return
	}
	b := make([]byte, n)
	_, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(unsafe.Pointer(&b[0])), uintptr(n), unix.MADV_POPULATE_WRITE)
	if e != 0 {
		// Kernels before 5.14: touch every page instead.
		for i := 0; i < n; i += 4096 {
			b[i] = 1
		}
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}
