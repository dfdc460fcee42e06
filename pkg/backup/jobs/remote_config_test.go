package jobs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// A job on an S3 repository with its keys, options and bandwidth limits
// is accepted, and its backend options carry them (the references, to
// be resolved by the service's resolver).
func TestConfigRemoteRepository(t *testing.T) {
	src := t.TempDir()
	yaml := fmt.Sprintf(`backup:
  enable: true
  jobs:
    offsite:
      repository: s3:https://s3.example.com/backups/host1
      paths: [%[1]s]
      password: env:PW
      s3:
        access_key: file:/run/secrets/s3-access
        secret_key: cred:s3-secret
        region: eu-central-1
        bucket_lookup: dns
        storage_class: STANDARD_IA
      limit_upload: 10MiB
      limit_download: 1GiB
    nas:
      repository: rest:https://nas.lan:8000/host1/
      paths: [%[1]s]
      password: env:PW
      rest: {user: env:REST_USER, password: sops:/etc/hostd/secrets.yaml#rest/password}
    cloud:
      repository: rclone:b2:bucket/host1
      paths: [%[1]s]
      password: env:PW
      rclone: {program: /usr/bin/rclone, args: [--config, /etc/rclone.conf], env: {RCLONE_CONFIG_PASS: cred:rclone-pass}}
`, src)
	c, err := loadConfig(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	res := secrets.NewResolver("", "")
	s3 := c.Jobs["offsite"]
	got := s3.backendOptions(res)
	want := backend.S3Options{AccessKey: "file:/run/secrets/s3-access", SecretKey: "cred:s3-secret", Region: "eu-central-1", BucketLookup: "dns", StorageClass: "STANDARD_IA"}
	if got.S3 != want || got.HTTP.LimitUpload != 10<<20 || got.HTTP.LimitDownload != 1<<30 || got.Secrets != res {
		t.Errorf("s3 job's backend options = %+v", got)
	}
	rest := c.Jobs["nas"]
	if got := rest.backendOptions(res).REST; got != (backend.RESTOptions{Username: "env:REST_USER", Password: "sops:/etc/hostd/secrets.yaml#rest/password"}) {
		t.Errorf("rest job's options = %+v", got)
	}
	rc := c.Jobs["cloud"]
	if got := rc.backendOptions(res).Rclone; got.Program != "/usr/bin/rclone" || len(got.Args) != 2 || got.Env["RCLONE_CONFIG_PASS"] != "cred:rclone-pass" {
		t.Errorf("rclone job's options = %+v", got)
	}
}

// Bad remote repositories and misplaced options are refused, each
// naming its field; a password in a URL is never printed.
func TestConfigRemoteRepositoryErrors(t *testing.T) {
	src := t.TempDir()
	job := func(extra string) string {
		return fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    a:\n      paths: [%s]\n      password: env:PW\n%s", src, extra)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"s3 keys in the url", job("      repository: s3:https://AKIA:secretpw@s3.example.com/b\n"),
			"backup.jobs.a.repository: repository url https://s3.example.com/b: credentials do not belong in the url"},
		{"rest password in the url", job("      repository: rest:https://u:secretpw@nas.lan/\n"),
			"backup.jobs.a.repository: repository url https://nas.lan/: credentials do not belong in the url"},
		{"s3 without a bucket", job("      repository: s3://bucket/r\n"),
			`backup.jobs.a.repository: repository url "s3://bucket/r": want s3:https://HOST/BUCKET/PREFIX`},
		{"rclone without a remote", job("      repository: \"rclone:\"\n"),
			`backup.jobs.a.repository: repository url "rclone:": want rclone:REMOTE:PATH`},
		{"unknown scheme", job("      repository: ftp://host/r\n"),
			`backup.jobs.a.repository: repository url "ftp://host/r": unsupported scheme`},
		{"s3 keys on a local repository", job("      repository: /r\n      s3: {access_key: env:AK}\n"),
			"backup.jobs.a.s3: s3 options are for s3: repositories"},
		{"rest credentials on an s3 repository", job("      repository: s3:https://h/b\n      rest: {user: env:U}\n"),
			"backup.jobs.a.rest: rest options are for rest: repositories"},
		{"literal secret key", job("      repository: s3:https://h/b\n      s3: {secret_key: secretpw}\n"),
			"backup.jobs.a.s3.secret_key: secret reference must be"},
		{"bad bucket lookup", job("      repository: s3:https://h/b\n      s3: {bucket_lookup: virtual}\n"),
			`backup.jobs.a.s3.bucket_lookup: "virtual": want path or dns`},
		{"limit on a local repository", job("      repository: /r\n      limit_upload: 1MiB\n"),
			"backup.jobs.a.limit_upload: bandwidth limits apply to s3:, rest: and rclone: repositories only"},
		{"bad limit", job("      repository: s3:https://h/b\n      limit_download: fast\n"),
			"backup.jobs.a.limit_download: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(t, tc.yaml)
			if err == nil {
				t.Fatalf("config accepted:\n%s", tc.yaml)
			}
			if got := err.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("errors:\n%s\nwant a line containing:\n%s", got, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error shows a secret: %s", err)
			}
		})
	}
}
