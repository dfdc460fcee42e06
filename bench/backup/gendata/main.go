package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	out := flag.String("out", "", "directory to create")
	size := flag.Int64("size", 1<<30, "total bytes")
	files := flag.Int("files", 32, "number of files")
	dup := flag.Float64("dup", 0.3, "share of duplicated content")
	change := flag.Float64("change", 0, "instead of creating: rewrite this share of the files in -out (append 1 MiB of new data)")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gendata: -out is required")
		os.Exit(2)
	}
	var err error
	if *change > 0 {
		err = modify(*out, *change, *seed)
	} else {
		err = generate(*out, *size, *files, *dup, *seed)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}

// block fills b with either pseudo-text (compressible about 3:1) or
// random bytes.
func block(r *rand.Rand, b []byte) {
	if r.IntN(2) == 0 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return
	}
	words := []string{"backup ", "chunk ", "pack ", "index ", "snapshot ", "tree ", "blob ", "key ", "lock ", "prune\n", "host ", "data "}
	i := 0
	for i < len(b) {
		w := words[r.IntN(len(words))]
		i += copy(b[i:], w)
		if r.IntN(8) == 0 && i < len(b) {
			b[i] = byte('a' + r.IntN(26))
			i++
		}
	}
}

func generate(dir string, total int64, n int, dup float64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	per := total / int64(n)
	unique := n - int(float64(n)*dup+0.5)
	var names []string
	buf := make([]byte, 64<<10)
	for i := range unique {
		name := filepath.Join(dir, fmt.Sprintf("unique-%02d.bin", i))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		for written := int64(0); written < per; written += int64(len(buf)) {
			block(r, buf)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		names = append(names, name)
	}
	// Duplicates: a random prefix, then long runs copied from unique files
	// at unaligned offsets.
	for i := unique; i < n; i++ {
		name := filepath.Join(dir, fmt.Sprintf("dup-%02d.bin", i))
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		prefix := make([]byte, 1+r.IntN(4096))
		block(r, prefix)
		_, _ = w.Write(prefix)
		written := int64(len(prefix))
		for written < per {
			src, err := os.ReadFile(names[r.IntN(len(names))])
			if err != nil {
				return err
			}
			off := r.Int64N(int64(len(src)) / 2)
			run := min(int64(len(src))-off, per-written, 8<<20+r.Int64N(8<<20))
			if _, err := w.Write(src[off : off+run]); err != nil {
				return err
			}
			written += run
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// modify changes a share of the regular files under dir: a small
// overwrite in the middle and an appended tail.
func modify(dir string, share float64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed+1))
	var files []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o200 != 0 {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	k := int(float64(len(files))*share + 0.5)
	buf := make([]byte, 4096)
	for _, p := range files[:k] {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		fi, _ := f.Stat()
		block(r, buf)
		if fi.Size() > int64(len(buf)) {
			if _, err := f.WriteAt(buf, fi.Size()/2); err != nil {
				return err
			}
		}
		if _, err := f.WriteAt(buf[:1+r.IntN(len(buf)-1)], fi.Size()); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Printf("changed %d of %d files\n", k, len(files))
	return nil
}
