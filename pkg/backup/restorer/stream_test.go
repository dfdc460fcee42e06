package restorer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/backuptest"
	"github.com/hostd/hostd/pkg/backup/repository"
	"github.com/hostd/hostd/pkg/backup/restorer"
)

// packProxy sits between hostd and a real S3 server. It counts the
// ranged GETs of packs and, as its mode says, spoils the answers to
// those of more than spoilOver bytes (the reads of file contents; the
// tree reads of the plan are smaller and pass untouched).
type packProxy struct {
	URL  string
	mode atomic.Value // string: "", "short", "shortonce", "empty", "long", "flip", "stall"
	// stalled gets a value when a read is held ("stall": until the
	// client gives up).
	stalled chan struct{}
	mu      sync.Mutex
	gets    int
	once    atomic.Bool
	spoil   atomic.Int32 // answers spoiled
}

const spoilOver = 256 << 10

func startPackProxy(t *testing.T, target string) *packProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	pp := &packProxy{stalled: make(chan struct{}, 1)}
	pp.mode.Store("")
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/data/") {
			return nil
		}
		pp.mu.Lock()
		pp.gets++
		pp.mu.Unlock()
		var start, end int64
		if n, _ := fmt.Sscanf(req.Header.Get("Range"), "bytes=%d-%d", &start, &end); n != 2 || end-start+1 <= spoilOver {
			return nil
		}
		mode := pp.mode.Load().(string)
		if mode == "" || mode == "shortonce" && !pp.once.CompareAndSwap(false, true) {
			return nil
		}
		if mode == "stall" {
			select {
			case pp.stalled <- struct{}{}:
			default:
			}
			<-req.Context().Done()
			return req.Context().Err()
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		pp.spoil.Add(1)
		announced := len(body)
		switch mode {
		case "short", "shortonce":
			body = body[:len(body)/2] // Content-Length stays: the body breaks off
		case "empty":
			body = nil
		case "long":
			body = append(body, make([]byte, 4096)...)
			announced = len(body)
		case "flip":
			body[len(body)/2] ^= 0x40
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(announced)
		resp.Header.Set("Content-Length", strconv.Itoa(announced))
		return nil
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	pp.URL = "http://" + ln.Addr().String()
	return pp
}

func (pp *packProxy) packGets() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.gets
}

// s3Repo creates a repository with packs of packSize on s's S3 server,
// reached through pp.
func s3Repo(t *testing.T, s *testenv.SeaweedFS, pp *packProxy, packSize int) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	ak, sk := s.KeyFiles(t)
	opts := backend.Options{
		S3:   backend.S3Options{AccessKey: secrets.Ref("file:" + ak), SecretKey: secrets.Ref("file:" + sk)},
		HTTP: backend.HTTPOptions{OpTimeout: 5 * time.Second, Retries: 1, Backoff: service.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}},
	}
	be, err := backend.Open(ctx, "s3:"+pp.URL+"/restore", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := repository.DefaultConfig()
	cfg.PackSize = packSize
	repo, err := repository.Create(ctx, be, backuptest.Password, cfg, *backuptest.FastKDF(), repository.Options{})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// Restores from object storage read each pack the restore needs with one
// ranged GET (a full restore: restic's one request per pack), however
// large the pack; a server that spoils those reads (a body cut short, a
// body longer than asked for, a flipped byte) makes the restore leave
// the files it could not verify out and name them, never write wrong
// bytes under a file's name, and never hang; a body cut short once is
// read on from where it broke off and the restore is complete; a
// cancelled restore ends at once even while the server holds its reads.
func TestRestoreStreamsPacks(t *testing.T) {
	s := testenv.StartSeaweedFS(t)
	pp := startPackProxy(t, s.Endpoint)
	const packSize = 8 << 20
	repo := s3Repo(t, s, pp, packSize)
	ctx := context.Background()

	// 24 MiB of incompressible files, two blobs each: three packs of 8
	// MiB, each more than one 6 MiB span of the earlier reads.
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	var nodes []repository.Node
	for i := range 48 {
		var content []repository.ID
		var all []byte
		for range 2 {
			b := make([]byte, 256<<10)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			id, _, err := repo.SaveBlob(ctx, repository.DataBlob, b)
			if err != nil {
				t.Fatal(err)
			}
			content = append(content, id)
			all = append(all, b...)
		}
		name := fmt.Sprintf("f%02d", i)
		want[name] = all
		nodes = append(nodes, repository.Node{Name: repository.Bytes(name), Type: repository.NodeFile, Mode: 0o644,
			UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Size: uint64(len(all)), Content: content})
	}
	snap := saveSnapshot(t, repo, nodes...)
	packs := map[repository.ID]bool{}
	for _, n := range nodes {
		for _, id := range n.Content {
			loc, ok := repo.Index().Lookup(repository.BlobHandle{Type: repository.DataBlob, ID: id})
			if !ok {
				t.Fatalf("blob %s not in index", id.Short())
			}
			packs[loc.Pack] = true
		}
	}
	treePacks := map[repository.ID]bool{}
	if loc, ok := repo.Index().Lookup(repository.BlobHandle{Type: repository.TreeBlob, ID: snap.Tree}); ok {
		treePacks[loc.Pack] = true
	}

	// check restores and returns the summary and warnings; every file
	// under its real name holds exactly its content.
	check := func(t *testing.T, mode string) (*restorer.Summary, []string, int) {
		t.Helper()
		pp.mode.Store(mode)
		defer pp.mode.Store("")
		target := t.TempDir()
		var mu sync.Mutex
		var warnings []string
		g0 := pp.packGets()
		sum, err := restorer.Run(ctx, repo, snap, restorer.Options{Target: target,
			Warn: func(p string, err error) { mu.Lock(); warnings = append(warnings, p+": "+err.Error()); mu.Unlock() }})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		err = filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasPrefix(d.Name(), restorer.TempPrefix) {
				return fmt.Errorf("temporary file %s left behind", p)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want[d.Name()]) {
				return fmt.Errorf("%s: restored content differs from the snapshot's", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return sum, warnings, pp.packGets() - g0
	}

	t.Run("one request per pack", func(t *testing.T) {
		sum, warnings, gets := check(t, "")
		if sum.Files != int64(len(nodes)) || sum.Errors != 0 {
			t.Fatalf("summary %+v, warnings %v", sum, warnings)
		}
		if len(packs) < 3 {
			t.Fatalf("data in %d packs, want at least 3 of %d bytes", len(packs), packSize)
		}
		if max := len(packs) + len(treePacks); gets > max {
			t.Fatalf("%d pack reads for %d data packs and %d tree packs", gets, len(packs), len(treePacks))
		}
		t.Logf("%d pack reads for %d data packs and %d tree packs", gets, len(packs), len(treePacks))
	})
	// A body that breaks off is read on from where it did, with one
	// request more per break: once, the restore is complete; every time
	// (half of each body), what each new request delivers is used until
	// one delivers no whole unit (the rest of the range is smaller than
	// twice the next unit), and the rest is left out.
	for _, mode := range []string{"shortonce", "short"} {
		t.Run(mode, func(t *testing.T) {
			pp.once.Store(false)
			s0 := pp.spoil.Load()
			sum, warnings, gets := check(t, mode)
			spoiled := int(pp.spoil.Load() - s0)
			if spoiled == 0 || sum.Files+sum.Errors != int64(len(nodes)) || mode == "shortonce" && sum.Errors != 0 {
				t.Fatalf("summary %+v, warnings %v", sum, warnings)
			}
			if gets > len(packs)+len(treePacks)+spoiled {
				t.Fatalf("%d pack reads for %d packs and %d broken bodies", gets, len(packs)+len(treePacks), spoiled)
			}
			t.Logf("%d restored, %d left out; %d pack reads, %d broken", sum.Files, sum.Errors, gets, spoiled)
		})
	}
	// A restore whose pack reads the server holds (it answers nothing)
	// ends as soon as its context is cancelled (SIGTERM), with no file
	// under a real name.
	t.Run("held, cancelled", func(t *testing.T) {
		pp.mode.Store("stall")
		defer pp.mode.Store("")
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-pp.stalled:
				cancel()
			case <-rctx.Done():
			}
		}()
		target := t.TempDir()
		_, err := restorer.Run(rctx, repo, snap, restorer.Options{Target: target})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("restore of held packs, cancelled: %v, want context.Canceled", err)
		}
		ents, err := os.ReadDir(target)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), restorer.TempPrefix) {
				t.Errorf("%s restored by a cancelled restore", e.Name())
			}
		}
	})
	for _, mode := range []string{"empty", "long", "flip"} {
		t.Run(mode, func(t *testing.T) {
			sum, warnings, _ := check(t, mode)
			if sum.Errors == 0 || len(warnings) == 0 || sum.Files+sum.Errors != int64(len(nodes)) {
				t.Fatalf("summary %+v, warnings %v: want files left out", sum, warnings)
			}
			t.Logf("%d restored, %d left out, e.g. %s", sum.Files, sum.Errors, warnings[0])
		})
	}
}
