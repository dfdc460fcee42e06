package metrics

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// readNumberFile reads a /proc or /sys file holding one number. The file
// is read into a small stack buffer with plain open/read: these are read
// every scrape, and os.ReadFile allocates a page-sized buffer each time.
func readNumberFile(path string) (float64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	_ = unix.Close(fd)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(buf[:max(n, 0)])), 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}
