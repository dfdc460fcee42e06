package containers

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskUse is the use of one filesystem.
type diskUse struct {
	Used, Size uint64
}

// statDisk measures the filesystem holding dir the way df does: used is
// size minus free blocks (including blocks reserved for root).
func statDisk(dir string) (diskUse, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return diskUse{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	return diskUse{Used: (st.Blocks - st.Bfree) * bs, Size: st.Blocks * bs}, nil
}
