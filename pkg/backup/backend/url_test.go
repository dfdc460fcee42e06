package backend_test

import (
	"strings"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
)

func TestParseS3(t *testing.T) {
	tests := []struct {
		url, endpoint, bucket, prefix string
		ok                            bool
	}{
		{"s3:http://127.0.0.1:8333/bucket/some/prefix", "http://127.0.0.1:8333", "bucket", "some/prefix", true},
		{"s3:https://s3.eu-central-1.amazonaws.com/bucket", "https://s3.eu-central-1.amazonaws.com", "bucket", "", true},
		{"s3:s3.amazonaws.com/bucket/p/", "https://s3.amazonaws.com", "bucket", "p", true},
		{"s3:http://host/", "", "", "", false},
		{"s3:ftp://host/bucket", "", "", "", false},
		{"s3:http://AKIA:secret@host/bucket", "", "", "", false},
		{"s3:http://host/bucket?x=1", "", "", "", false},
	}
	for _, tc := range tests {
		ep, b, p, err := backend.ParseS3(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		if err != nil {
			if strings.Contains(err.Error(), "secret@") || strings.Contains(err.Error(), "AKIA") {
				t.Errorf("%s: error shows the secret: %v", tc.url, err)
			}
			continue
		}
		if ep.String() != tc.endpoint || b != tc.bucket || p != tc.prefix {
			t.Errorf("%s: %s %q %q", tc.url, ep, b, p)
		}
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url    string
		ok     bool
		remote bool
	}{
		{"/var/backup", true, false},
		{"file:///var/backup", true, false},
		{"sftp://u@host/path", true, true},
		{"sftp://u:pw@host/path", false, true},
		{"s3:http://127.0.0.1:9000/b/p", true, true},
		{"rest:http://127.0.0.1:8000/", true, true},
		{"rest:https://u:pw@host/", false, true},
		{"rest:ftp://host/", false, true},
		{"rclone:remote:path", true, true},
		{"rclone:", false, true},
		{"rclone:--config=x", false, true},
		{"gs://bucket", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		err := backend.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("CheckURL(%q): error shows the password: %v", tc.url, err)
		}
		if backend.Remote(tc.url) != tc.remote {
			t.Errorf("Remote(%q) = %v", tc.url, !tc.remote)
		}
	}
}
