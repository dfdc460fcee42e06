package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backuptest"
)

// BenchmarkBackupGoSrc backs up $GOROOT/src/net (many small source files)
// into a fresh repository per iteration.
func BenchmarkBackupGoSrc(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src", "net")
	if p := os.Getenv("HOSTD_BENCH_SRC"); p != "" {
		src = p
	}
	ctx := context.Background()
	var total int64
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
			b.Fatal(err)
		}
		r, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{NoCache: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sum, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}})
		if err != nil {
			b.Fatal(err)
		}
		total = sum.BytesRead
		r.Close()
	}
	b.SetBytes(total)
}

// BenchmarkBackupLarge backs up 256 MiB of random files.
func BenchmarkBackupLarge(b *testing.B) {
	src := b.TempDir()
	for i := range 8 {
		backuptest.RandomFile(b, filepath.Join(src, string(rune('a'+i))), 32<<20)
	}
	ctx := context.Background()
	b.SetBytes(256 << 20)
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
			b.Fatal(err)
		}
		r, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{NoCache: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkBackupUnchanged re-runs a backup of an unchanged tree (the
// file cache path): $HOSTD_BENCH_SRC or $GOROOT/src/net.
func BenchmarkBackupUnchanged(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src", "net")
	if p := os.Getenv("HOSTD_BENCH_SRC"); p != "" {
		src = p
	}
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "repo")
	if err := backup.Init(ctx, dir, backuptest.Password, backup.InitOptions{KDF: backuptest.FastKDF()}); err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	run := func() {
		r, err := backup.Open(ctx, dir, backuptest.Password, backup.OpenOptions{CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Backup(ctx, backup.BackupOptions{Paths: []string{src}}); err != nil {
			b.Fatal(err)
		}
	}
	run()
	for b.Loop() {
		run()
	}
}
