package archiver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hostd/hostd/pkg/backup/repository"
)

// TestSaveFileNotRegular: a file queued as regular that is now a FIFO (no
// writer) or a directory is refused at once, not read or waited on.
func TestSaveFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &archiver{names: newIDNames()}
	for _, p := range []string{fifo, dir} {
		job := &fileJob{path: p, node: &repository.Node{Name: repository.Bytes(filepath.Base(p)), Type: repository.NodeFile}, openXattrs: true}
		done := make(chan error, 1)
		go func() { done <- a.saveFile(context.Background(), job, &workerBufs{}) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "no longer a regular file") {
				t.Errorf("%s: error %v, want no longer a regular file", p, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: saveFile still waiting after 10s", p)
		}
	}
}
