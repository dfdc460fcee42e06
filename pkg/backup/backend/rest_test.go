package backend_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// The REST client against `rclone serve restic` as a rest-server on a
// loopback port, over a local directory: the files land in the layout
// of a local repository.
func TestREST(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	srv := testenv.StartRcloneREST(t, dir)
	be, err := backend.Open(context.Background(), "rest:"+srv.URL, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	exercise(t, be, nil)
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Fatalf("config not in the served directory: %v\n%s", err, srv.Log())
	}
	if _, err := backend.Open(context.Background(), "rest:http://user:pw@"+srv.Addr+"/", backend.Options{}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("rest url with a password: %v", err)
	}
}

// The rclone backend runs `rclone serve restic --stdio` and speaks
// HTTP/2 over its standard input and output: to a local directory, and
// to the S3 server through rclone's S3 remote.
func TestRclone(t *testing.T) {
	testenv.Rclone(t)
	t.Run("local", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "repo")
		be, err := backend.Open(context.Background(), "rclone::local:"+dir, backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		exercise(t, be, nil)
		if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("s3", func(t *testing.T) {
		s := testenv.StartSeaweedFS(t)
		testenv.RcloneS3Remote(t, "WS3", s)
		be, err := backend.Open(context.Background(), "rclone:WS3:rclonebucket/prefix", backend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		exercise(t, be, nil)
	})
}

// A remote rclone does not know fails at open with rclone's own words.
func TestRcloneBadRemote(t *testing.T) {
	testenv.Rclone(t)
	_, err := backend.Open(context.Background(), "rclone:nosuchremote:path", backend.Options{})
	if err == nil || !strings.Contains(err.Error(), "rclone said") {
		t.Fatalf("open an unknown remote: %v", err)
	}
	t.Logf("unknown remote: %v", err)
}
