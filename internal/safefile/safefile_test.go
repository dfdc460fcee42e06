package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 65<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       error
		msg        string
	}{
		{"regular", small, nil, ""},
		{"too large", big, ErrTooLarge, big + ": too large: larger than 64 KiB"},
		{"fifo", fifo, ErrNotRegular, "(a FIFO)"},
		{"directory", dir, ErrNotRegular, "(a directory)"},
		{"char device", "/dev/zero", ErrNotRegular, "/dev/zero: not a regular file (a character device)"},
		{"missing", filepath.Join(dir, "nope"), os.ErrNotExist, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Read(tt.path, SecretLimit)
			if tt.want == nil {
				if err != nil || string(b) != "secret" {
					t.Fatalf("Read = %q, %v", b, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Read error = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestReadAllGrowing(t *testing.T) {
	// A reader that is not a regular file is cut at the cap while reading.
	r := strings.NewReader(strings.Repeat("x", 100))
	if _, err := ReadAll(r, "stdin", 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadAll = %v, want ErrTooLarge", err)
	}
	b, err := ReadAll(strings.NewReader("abc"), "stdin", 3)
	if err != nil || string(b) != "abc" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}
