package jobs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/confkit"
)

// loadConfig runs the daemon's config loader on a file holding yaml,
// with only the backup section registered.
func loadConfig(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	sections := []config.Section{{Name: Name, Default: func() any { c := DefaultConfig(); return &c }}}
	getenv := func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}
	c, err := config.Parse("hostd.yaml", []byte(yaml), sections, getenv)
	if err != nil {
		return nil, err
	}
	return c.Sections[Name].(*Config), nil
}

func TestConfigShorthand(t *testing.T) {
	src := t.TempDir()
	cfg, err := loadConfig(t, fmt.Sprintf(`
backup:
  enable: true
  repository: /var/backup/nixos
  paths: [%q]
  exclude: ["*.tmp"]
  schedule: daily
  password: cred:backup-password
`, src))
	if err != nil {
		t.Fatal(err)
	}
	jobs := cfg.jobs()
	if len(jobs) != 1 || jobs[0].Name != ShorthandJob {
		t.Fatalf("jobs = %+v, want one job named %q", jobs, ShorthandJob)
	}
	j := jobs[0].Job
	if j.Repository != "/var/backup/nixos" || j.Paths[0] != src || j.Exclude[0] != "*.tmp" || j.Schedule != "daily" {
		t.Errorf("shorthand job = %+v", j)
	}
	if !*j.Persistent || j.Compression != DefaultCompression || *j.Retention != DefaultRetention() || j.CheckReadData != DefaultCheckReadData {
		t.Errorf("defaults not applied: persistent %v compression %d retention %+v check %q",
			*j.Persistent, j.Compression, *j.Retention, j.CheckReadData)
	}
}

func TestConfigJobs(t *testing.T) {
	src := t.TempDir()
	cfg, err := loadConfig(t, fmt.Sprintf(`
backup:
  enable: true
  jobs:
    home:
      repository: sftp://backup@nas.lan:2222/srv/home
      paths: [%[1]q]
      schedule: "Mon..Fri 02:30; Sat,Sun 10:00"
      randomized_delay: 30m
      persistent: false
      password: sops:secrets/backup.yaml#backup/home
      one_file_system: true
      exclude_caches: true
      compression: 9
      check: monthly
      check_read_data: 1/4
      tags: [laptop]
      retention:
        keep_last: 3
        keep_within: 2d
    etc:
      repository: /srv/backup/etc
      paths: [%[1]q]
      password: /run/secrets/etc
      init: true
`, src))
	if err != nil {
		t.Fatal(err)
	}
	jobs := cfg.jobs()
	if len(jobs) != 2 || jobs[0].Name != "etc" || jobs[1].Name != "home" {
		t.Fatalf("jobs = %+v", jobs)
	}
	etc, home := jobs[0].Job, jobs[1].Job
	if !etc.Init || etc.Schedule != DefaultSchedule || !*etc.Persistent || *etc.Retention != DefaultRetention() {
		t.Errorf("etc = %+v", etc)
	}
	wantRet := Retention{KeepLast: 3, KeepWithin: 48 * time.Hour, Schedule: DefaultRetentionSchedule}
	if *home.Persistent || home.RandomizedDelay != 30*time.Minute || home.Compression != 9 || !home.OneFileSystem ||
		!home.ExcludeCaches || home.Check != "monthly" || home.CheckReadData != "1/4" || *home.Retention != wantRet {
		t.Errorf("home = %+v retention %+v", home, *home.Retention)
	}
}

func TestConfigDisabledIsNotValidated(t *testing.T) {
	if _, err := loadConfig(t, "backup:\n  enable: false\n  paths: [/does/not/exist]\n"); err != nil {
		t.Fatalf("a disabled section was validated: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	src := t.TempDir()
	missing := filepath.Join(src, "missing")
	tests := []struct {
		name string
		yaml string
		want []string // each a line of the error, file:line:col: path: message
	}{
		{"no job", "backup:\n  enable: true\n", []string{
			"hostd.yaml:2:3: backup: no backup job: set repository and paths, or add jobs.<name>"}},
		{"path does not exist", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  password: env:PW\n  paths:\n    - %s\n    - %s\n", src, missing), []string{
			fmt.Sprintf("hostd.yaml:7:7: backup.paths[1]: path %q does not exist", missing)}},
		{"relative path and repository", "backup:\n  enable: true\n  jobs:\n    a:\n      repository: backups\n      paths: [home]\n      password: env:PW\n", []string{
			`hostd.yaml:5:19: backup.jobs.a.repository: repository "backups" must be an absolute directory`,
			`hostd.yaml:6:15: backup.jobs.a.paths[0]: path "home" must be absolute`}},
		{"bad schedule", fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    a:\n      repository: /r\n      paths: [%s]\n      password: env:PW\n      schedule: Mon..Fri 25:00\n", src), []string{
			`hostd.yaml:8:17: backup.jobs.a.schedule: invalid calendar expression "Mon..Fri 25:00": hour 25 out of range 0..23`}},
		{"schedule in the past", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n  password: env:PW\n  schedule: 2020-01-01\n", src), []string{
			`hostd.yaml:6:13: backup.schedule: schedule "2020-01-01" never elapses again`}},
		{"bad secret reference", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n  password: hunter2\n", src), []string{
			"hostd.yaml:5:13: backup.password: secret reference must be sops:FILE#key, file:PATH, cred:NAME, env:NAME or an absolute path (literal secrets are not allowed in the config)"}},
		{"missing password", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n", src), []string{
			"hostd.yaml:2:3: backup.password: a secret reference to the repository passphrase is required (file:PATH, cred:NAME, sops:FILE#key or env:NAME)"}},
		{"retention keeps nothing", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n  password: env:PW\n  retention:\n    keep_daily: 0\n    schedule: Funday\n", src), []string{
			"hostd.yaml:7:5: backup.retention: keeps no snapshot: set at least one keep_* rule",
			`hostd.yaml:8:15: backup.retention.schedule: invalid calendar expression "Funday": expected a number for year or month at column 1, found "Funday"`}},
		{"negative keep and bad compression", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n  password: env:PW\n  compression: 30\n  retention: {keep_last: -1, keep_daily: 3}\n", src), []string{
			"hostd.yaml:6:16: backup.compression: zstd level must be 1..22, or -1 for none, not 30",
			"hostd.yaml:7:26: backup.retention.keep_last: must not be negative"}},
		{"bad exclude and check", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%s]\n  password: env:PW\n  exclude: [\"re:(\"]\n  check: weekly\n  check_read_data: 200%%\n", src), []string{
			"hostd.yaml:6:13: backup.exclude[0]: ",
			`hostd.yaml:8:20: backup.check_read_data: "200%": want a percentage in (0%, 100%] or n/m`}},
		{"sftp with a password", fmt.Sprintf("backup:\n  enable: true\n  repository: sftp://u:secretpw@host/r\n  paths: [%s]\n  password: env:PW\n", src), []string{
			"hostd.yaml:3:15: backup.repository: repository URL must not hold a password; hostd authenticates with SSH keys or the agent"}},
		{"unsupported scheme", fmt.Sprintf("backup:\n  enable: true\n  repository: s3://bucket/r\n  paths: [%s]\n  password: env:PW\n", src), []string{
			`hostd.yaml:3:15: backup.repository: repository url "s3://bucket/r": want s3:https://HOST/BUCKET/PREFIX`}},
		{"bad job name and duplicate default", fmt.Sprintf("backup:\n  enable: true\n  repository: /r\n  paths: [%[1]s]\n  password: env:PW\n  jobs:\n    default: {repository: /q, paths: [%[1]s], password: env:PW}\n    \"bad name\": {repository: /q2, paths: [%[1]s], password: env:PW}\n", src), []string{
			`hostd.yaml:7:14: backup.jobs.default: job "default" is already defined by the top-level repository and paths`,
			`hostd.yaml:8:17: backup.jobs.bad name: job name "bad name" must be letters, digits, '-' and '_' (at most 64)`}},
		{"job name with a newline and a bidi control", fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    \"x\\ny\\u202ez\": {repository: /q2, paths: [%[1]s], password: env:PW}\n", src), []string{
			`hostd.yaml:4:20: backup.jobs."x\ny\u202ez": job name "x\ny\u202ez" must be letters, digits, '-' and '_' (at most 64)`}},
		{"shared repository", fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    a: {repository: /r, paths: [%[1]s], password: env:PW}\n    b: {repository: /r/, paths: [%[1]s], password: env:PW, retention: {keep_last: 1}}\n", src), []string{
			`: backup.jobs.b.retention: job "b" shares repository /r/ with job "a" but not its retention; jobs on one repository need the same retention`,
			`: backup.jobs.b.paths: job "b" backs up the same paths into the same repository as job "a"`}},
		{"top-level keys without a job", "backup:\n  enable: true\n  schedule: weekly\n  jobs:\n    a: {repository: /r, paths: [/], password: env:PW}\n", []string{
			"backup.repository: top-level job keys (schedule, exclude, password, ...) need repository and paths; or move them under jobs.<name>"}},
		{"unknown key", "backup:\n  enable: true\n  jobs:\n    a: {repository: /r, paths: [/], password: env:PW, retenton: {}}\n", []string{
			`hostd.yaml:4:55: backup.jobs.a.retenton: unknown key "retenton" (did you mean "retention"?)`}},
		{"bad duration", "backup:\n  enable: true\n  jobs:\n    a: {repository: /r, paths: [/], password: env:PW, randomized_delay: soon}\n", []string{
			`hostd.yaml:4:73: backup.jobs.a.randomized_delay: invalid duration "soon": expected a number`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(t, tc.yaml)
			if err == nil {
				t.Fatalf("config accepted:\n%s", tc.yaml)
			}
			var errs confkit.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not confkit.Errors: %v", err, err)
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors:\n%s\nwant a line containing:\n%s", got, w)
				}
			}
			if strings.Contains(got, "secretpw") {
				t.Errorf("error shows the URL's password: %s", got)
			}
		})
	}
}

// TestValidateReportsEveryProblem checks that one pass reports all
// problems of all jobs, not just the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Config{Enable: true, Jobs: map[string]Job{
		"a": {Repository: "rel", Paths: []string{"/nonexistent-a"}, Schedule: "bogus"},
		"b": {Paths: []string{"/nonexistent-b"}, Password: "nope"},
	}}
	v := confkit.NewValidator(Name)
	cfg.Validate(v)
	var paths []string
	for _, e := range v.Errors() {
		paths = append(paths, e.Path)
	}
	want := []string{"backup.jobs.a.repository", "backup.jobs.a.paths[0]", "backup.jobs.a.schedule", "backup.jobs.a.password",
		"backup.jobs.b.repository", "backup.jobs.b.paths[0]", "backup.jobs.b.password"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("problems at %v, want %v", paths, want)
	}
}

// TestConfigShowLoadsAgain checks that the section as `hostd config show`
// prints it (every default filled in, the top-level keys included) loads
// again: a config of named jobs only used to come back refused, the
// top-level schedule and retention taken for keys set without a job.
func TestConfigShowLoadsAgain(t *testing.T) {
	src := t.TempDir()
	cfg, err := loadConfig(t, fmt.Sprintf("backup:\n  enable: true\n  jobs:\n    home: {repository: /r, paths: [%q], password: env:PW}\n", src))
	if err != nil {
		t.Fatal(err)
	}
	shown, err := confkit.Marshal(map[string]any{Name: cfg.Effective()}, true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadConfig(t, string(shown))
	if err != nil {
		t.Fatalf("config show's output refused: %v\n%s", err, shown)
	}
	if j := again.jobs(); len(j) != 1 || j[0].Name != "home" || j[0].Schedule != DefaultSchedule {
		t.Errorf("jobs after a round trip: %+v", j)
	}
}
