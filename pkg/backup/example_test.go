package backup_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hostd/hostd/pkg/backup"
)

// Back up a directory, list snapshots and restore the latest one.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "hostd-example-")
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo")
	src := filepath.Join(tmp, "src")
	_ = os.MkdirAll(src, 0o755)
	_ = os.WriteFile(filepath.Join(src, "notes.txt"), []byte("remember the milk\n"), 0o644)
	password := []byte("correct horse battery staple")

	if err := backup.Init(ctx, repo, password, backup.InitOptions{}); err != nil {
		log.Fatal(err)
	}
	r, err := backup.Open(ctx, repo, password, backup.OpenOptions{CacheDir: filepath.Join(tmp, "cache")})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}, Excludes: []string{"**/*.tmp"}, Tags: []string{"example"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new files:", sum.FilesNew, "errors:", sum.Errors)

	snaps, _ := r.Snapshots(ctx)
	fmt.Println("snapshots:", len(snaps), snaps[0].Tags)

	target := filepath.Join(tmp, "restore")
	if _, err := r.Restore(ctx, "latest", backup.RestoreOptions{Target: target}); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(target, src, "notes.txt"))
	fmt.Print(string(b))
	// Output:
	// new files: 1 errors: 0
	// snapshots: 1 [example]
	// remember the milk
}

// Keep the last 7 daily and 4 weekly snapshots, then free the space.
func ExampleRepository_Forget() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "hostd-example-")
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo")
	password := []byte("pw")
	_ = backup.Init(ctx, repo, password, backup.InitOptions{})
	r, err := backup.Open(ctx, repo, password, backup.OpenOptions{CacheDir: filepath.Join(tmp, "cache")})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for range 3 {
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{tmp + "/repo/config"}}); err != nil {
			log.Fatal(err)
		}
	}
	res, err := r.Forget(ctx, backup.RetentionPolicy{Daily: 7, Weekly: 4}, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("kept:", len(res.Keep), "removed:", len(res.Remove))
	if _, err := r.Prune(ctx, backup.PruneOptions{MaxUnused: new(5.0)}); err != nil {
		log.Fatal(err)
	}
	check, _ := r.Check(ctx, backup.CheckOptions{ReadData: true})
	fmt.Println("check ok:", check.OK())
	// Output:
	// kept: 1 removed: 2
	// check ok: true
}
