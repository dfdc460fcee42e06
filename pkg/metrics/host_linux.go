package metrics

import (
	"os"

	"golang.org/x/sys/unix"
)

// statfsFunc reads the statistics of one mounted filesystem.
type statfsFunc func(path string, buf *unix.Statfs_t) error

// unameFunc returns the kernel's uname(2) answer.
type unameFunc func() (unix.Utsname, error)

func unixStatfs(path string, buf *unix.Statfs_t) error { return unix.Statfs(path, buf) }

func unixUname() (unix.Utsname, error) {
	var u unix.Utsname
	err := unix.Uname(&u)
	return u, err
}

func pageSize() int { return os.Getpagesize() }
