package backend_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hostd/hostd/pkg/backup/backend"
)

// An S3 repository: the keys come from secret references (a systemd
// credential and a file), never from the URL; deadlines and retries are
// shared with the REST and rclone backends.
func ExampleOpen_s3() {
	opts := backend.Options{
		S3: backend.S3Options{
			AccessKey: "cred:s3-access-key",
			SecretKey: "file:/run/secrets/s3-secret-key",
			Region:    "eu-central-1",
		},
		HTTP: backend.HTTPOptions{OpTimeout: 2 * time.Minute, LimitUpload: 10 << 20},
	}
	be, err := backend.Open(context.Background(), "s3:https://s3.eu-central-1.amazonaws.com/backups/host1", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer be.Close()
	fmt.Println(be.Location())
}

// Checking a repository URL in a config, without connecting.
func ExampleCheckURL() {
	for _, u := range []string{"s3:http://127.0.0.1:8333/bucket/prefix", "rest:https://user:pw@host/", "rclone:b2:bucket/host1"} {
		fmt.Println(backend.CheckURL(u) == nil, backend.Remote(u))
	}
	// Output:
	// true true
	// false true
	// true true
}
