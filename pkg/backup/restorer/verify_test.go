package restorer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
)

func TestVerifyFile(t *testing.T) {
	ctx := context.Background()
	cfg := repository.DefaultConfig()
	repo, err := repository.Create(ctx, backend.NewLocal(filepath.Join(t.TempDir(), "repo")), backuptest.Password, cfg, *backuptest.FastKDF(), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	parts := []string{strings.Repeat("a", 1000), strings.Repeat("b", 500)}
	n := &repository.Node{Type: repository.NodeFile, Size: 1500}
	for _, p := range parts {
		id, _, err := repo.SaveBlob(ctx, repository.DataBlob, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		n.Content = append(n.Content, id)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r := &restorer{repo: repo}
	dir := t.TempDir()
	tests := []struct {
		name, content, err string
	}{
		{"identical", parts[0] + parts[1], ""},
		{"changed byte", parts[0] + "c" + parts[1][1:], "content differs from the snapshot in bytes 1000..1500"},
		{"short", parts[0] + parts[1][:10], "file ends in chunk 1"},
		{"long", parts[0] + parts[1] + "x", "longer than the snapshot's 1500 bytes"},
	}
	var buf []byte
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := r.verifyFile(p, n, &buf)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("verify: %v, want %q", err, tc.err)
			}
		})
	}
}
