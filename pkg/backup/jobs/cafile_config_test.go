package jobs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/secrets"
)

// ca_file is accepted on s3: and rest: jobs and reaches the backend
// options; on other repositories, or as a relative path, it is refused
// naming the field.
func TestConfigCAFile(t *testing.T) {
	src := t.TempDir()
	job := func(extra string) string {
		return fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    a:\n      paths: [%s]\n      password: env:PW\n%s", src, extra)
	}
	for _, repo := range []string{"s3:https://s3.lan/b/h", "rest:https://nas.lan:8000/h/"} {
		c, err := loadConfig(t, job("      repository: "+repo+"\n      ca_file: /etc/hostd/lan-ca.pem\n"))
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		j := c.Jobs["a"]
		if got := j.backendOptions(secrets.NewResolver("", "")).HTTP.CACertFile; got != "/etc/hostd/lan-ca.pem" {
			t.Errorf("%s: CA file in the backend options %q", repo, got)
		}
	}
	tests := []struct{ name, yaml, want string }{
		{"local repository", job("      repository: /r\n      ca_file: /etc/ca.pem\n"),
			"backup.jobs.a.ca_file: a CA file applies to s3: and rest: repositories only"},
		{"rclone repository", job("      repository: rclone:b2:bucket\n      ca_file: /etc/ca.pem\n"),
			"backup.jobs.a.ca_file: a CA file applies to s3: and rest: repositories only"},
		{"relative path", job("      repository: s3:https://h/b\n      ca_file: ca.pem\n"),
			`backup.jobs.a.ca_file: "ca.pem" must be an absolute path`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("errors: %v\nwant a line containing:\n%s", err, tc.want)
			}
		})
	}
}
