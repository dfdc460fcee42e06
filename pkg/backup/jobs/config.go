package jobs

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/schedule"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/forget"
	"github.com/hostd/hostd/pkg/backup/pattern"
)

// ShorthandJob is the name of the job the top-level repository, paths,
// exclude and schedule keys describe (the seed's services.backup).
const ShorthandJob = "default"

// Config is the `backup` section: scheduled backups of local paths into
// hostd repositories.
//
// The keys of one job may be given at the top level of the section (the
// single-job shorthand, job name "default"), under jobs.<name>, or both.
type Config struct {
	// Enable turns scheduled backups on. Default: false.
	Enable bool `yaml:"enable"`
	// Job holds the single-job shorthand: repository, paths, exclude,
	// schedule and every other job key, at the top level of the section.
	// It is a job when repository or paths is set.
	Job `yaml:",inline"`
	// Jobs are named backup jobs; names are letters, digits, "-" and "_".
	// Keys left out take the defaults documented on Job. Default: none.
	Jobs map[string]Job `yaml:"jobs"`
}

// Job is one scheduled backup.
type Job struct {
	// Repository is where snapshots go: an absolute directory,
	// sftp://user@host[:port]/path, s3:https://HOST/BUCKET[/PREFIX],
	// rest:https://HOST/PATH or rclone:REMOTE:PATH; never with
	// credentials in it (they come from s3, rest and rclone). Required.
	Repository string `yaml:"repository"`
	// S3 holds the credentials and options of an s3: repository.
	// Default: the keys from env:AWS_ACCESS_KEY_ID and
	// env:AWS_SECRET_ACCESS_KEY of hostd's environment.
	S3 S3 `yaml:"s3,omitempty"`
	// REST holds the credentials of a rest: repository. Default: none.
	REST REST `yaml:"rest,omitempty"`
	// Rclone configures the rclone process of an rclone: repository.
	// Default: rclone from $PATH with its own config file.
	Rclone Rclone `yaml:"rclone,omitempty"`
	// LimitUpload and LimitDownload cap the transfer rate to and from an
	// S3, REST or rclone repository, in bytes per second ("10MiB").
	// Default: 0, no limit.
	LimitUpload   service.ByteSize `yaml:"limit_upload,omitempty"`
	LimitDownload service.ByteSize `yaml:"limit_download,omitempty"`
	// CAFile is a PEM file of the certificate authorities trusted for an
	// s3:https:// or rest:https:// repository (restic's --cacert), in
	// place of the system's. Default: the system's roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// Paths are the absolute paths to back up; each must exist. Required.
	Paths []string `yaml:"paths"`
	// Exclude are patterns of paths to leave out, in borg's styles:
	// sh: (the default, "**" crosses directories), fm:, re:, pp:.
	// Default: none.
	Exclude []string `yaml:"exclude"`
	// ExcludeCaches leaves out directories holding a valid CACHEDIR.TAG.
	// Default: false.
	ExcludeCaches bool `yaml:"exclude_caches"`
	// OneFileSystem stays on the file system of each path. Default: false.
	OneFileSystem bool `yaml:"one_file_system"`
	// Schedule is when the job runs: systemd calendar expressions
	// (OnCalendar= syntax, several separated by ";"), such as "daily",
	// "Mon..Fri 02:30" or "*-*-* 00/6:00 Europe/Berlin". Default: daily.
	Schedule string `yaml:"schedule"`
	// RandomizedDelay delays each run by a random time up to this long,
	// fixed per host and job (systemd's RandomizedDelaySec= with
	// FixedRandomDelay=true). Default: 0.
	RandomizedDelay time.Duration `yaml:"randomized_delay"`
	// Persistent runs a backup at start when hostd was down at a
	// scheduled time (systemd's Persistent=true). Default: true.
	Persistent *bool `yaml:"persistent"`
	// Password is a secret reference to the repository passphrase:
	// file:/path or an absolute path, cred:NAME (systemd credential),
	// sops:FILE#key/path or env:NAME. Required.
	Password secrets.Ref `yaml:"password"`
	// Init creates the repository on the first run when it does not
	// exist yet. Without it, a missing repository is an error.
	// Default: false.
	Init bool `yaml:"init"`
	// Compression is the zstd level (1..22) of a repository this job
	// creates, or -1 for none; an existing repository keeps its own.
	// Default: 3.
	Compression int `yaml:"compression"`
	// Retention is which snapshots to keep; the rest are forgotten and
	// their data pruned. Default: keep_daily 7, keep_weekly 4,
	// keep_monthly 6, applied weekly.
	Retention *Retention `yaml:"retention"`
	// Check is when to verify the repository after a backup, reading back
	// a part of the data (a calendar expression; empty turns it off).
	// Default: off.
	Check string `yaml:"check"`
	// CheckReadData is the share of packs a check reads and decrypts:
	// a percentage ("5%") or "n/m" (the n-th of m parts, rotating).
	// Default: 5%.
	CheckReadData string `yaml:"check_read_data"`
	// Tags are added to every snapshot, besides "job=<name>".
	// Default: none.
	Tags []string `yaml:"tags"`
}

// S3 is a job's S3 credentials and options (backend.S3Options).
type S3 struct {
	// AccessKey and SecretKey are secret references (file:, cred:,
	// sops:, env:) to the key pair. Default: env:AWS_ACCESS_KEY_ID and
	// env:AWS_SECRET_ACCESS_KEY.
	AccessKey secrets.Ref `yaml:"access_key,omitempty"`
	SecretKey secrets.Ref `yaml:"secret_key,omitempty"`
	// SessionToken is a secret reference to a temporary session token.
	// Default: none.
	SessionToken secrets.Ref `yaml:"session_token,omitempty"`
	// Region signs the requests. Default: $AWS_DEFAULT_REGION, else
	// us-east-1.
	Region string `yaml:"region,omitempty"`
	// BucketLookup is "path" (HOST/BUCKET) or "dns" (BUCKET.HOST).
	// Default: dns for amazonaws.com, path for every other server.
	BucketLookup string `yaml:"bucket_lookup,omitempty"`
	// StorageClass of the objects written (STANDARD_IA, ...). Default:
	// the bucket's.
	StorageClass string `yaml:"storage_class,omitempty"`
}

// REST is a job's REST server credentials (backend.RESTOptions).
type REST struct {
	// User and Password are secret references for HTTP basic
	// authentication. Default: none.
	User     secrets.Ref `yaml:"user,omitempty"`
	Password secrets.Ref `yaml:"password,omitempty"`
}

// Rclone configures the rclone process (backend.RcloneOptions).
type Rclone struct {
	// Program is the rclone executable. Default: rclone from $PATH.
	Program string `yaml:"program,omitempty"`
	// Args are added to rclone's command line (--config FILE, ...).
	// Default: none.
	Args []string `yaml:"args,omitempty"`
	// Env sets environment variables of rclone from secret references,
	// such as RCLONE_CONFIG_PASS or RCLONE_CONFIG_<REMOTE>_<OPTION>.
	// Default: none.
	Env map[string]secrets.Ref `yaml:"env,omitempty"`
}

// backendOptions returns the backend options of the job's repository,
// its secret references to be resolved by res (the service's resolver).
func (j *Job) backendOptions(res *secrets.Resolver) backend.Options {
	return backend.Options{
		S3: backend.S3Options{AccessKey: j.S3.AccessKey, SecretKey: j.S3.SecretKey, SessionToken: j.S3.SessionToken,
			Region: j.S3.Region, BucketLookup: j.S3.BucketLookup, StorageClass: j.S3.StorageClass},
		REST:    backend.RESTOptions{Username: j.REST.User, Password: j.REST.Password},
		Rclone:  backend.RcloneOptions{Program: j.Rclone.Program, Args: j.Rclone.Args, Env: j.Rclone.Env},
		HTTP:    backend.HTTPOptions{LimitUpload: j.LimitUpload.Bytes(), LimitDownload: j.LimitDownload.Bytes(), CACertFile: j.CAFile},
		Secrets: res,
	}
}

// Retention is a job's snapshot retention policy, with restic's rules:
// a snapshot is kept if any rule keeps it.
type Retention struct {
	// KeepLast keeps the newest n snapshots. Default: 0.
	KeepLast int `yaml:"keep_last"`
	// KeepHourly keeps the newest snapshot of each of the last n hours
	// that have one. Default: 0.
	KeepHourly int `yaml:"keep_hourly"`
	// KeepDaily keeps one snapshot per day for n days. Default: 7.
	KeepDaily int `yaml:"keep_daily"`
	// KeepWeekly keeps one per ISO week for n weeks. Default: 4.
	KeepWeekly int `yaml:"keep_weekly"`
	// KeepMonthly keeps one per month for n months. Default: 6.
	KeepMonthly int `yaml:"keep_monthly"`
	// KeepYearly keeps one per year for n years. Default: 0.
	KeepYearly int `yaml:"keep_yearly"`
	// KeepWithin keeps every snapshot younger than this, measured from
	// the newest snapshot. Default: 0.
	KeepWithin time.Duration `yaml:"keep_within"`
	// Schedule is when retention (forget, then prune) runs; it runs after
	// the first successful backup once this is due. Default: weekly.
	Schedule string `yaml:"schedule"`
}

// Defaults of a job's optional keys.
const (
	DefaultSchedule          = "daily"
	DefaultRetentionSchedule = "weekly"
	DefaultCompression       = 3
	DefaultCheckReadData     = "5%"
)

// DefaultRetention is the retention of a job without a retention key.
func DefaultRetention() Retention {
	return Retention{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 6, Schedule: DefaultRetentionSchedule}
}

// DefaultConfig returns the section's defaults: off, no jobs.
func DefaultConfig() Config {
	return Config{}
}

// Effective returns the section with every job's defaults filled in,
// the top-level keys included (the defaults a single-job shorthand gets):
// what `hostd config show` prints and the example states
// (config.Defaulter).
func (c Config) Effective() any {
	out := c
	out.Job = c.Job.withDefaults()
	if c.Jobs != nil {
		out.Jobs = make(map[string]Job, len(c.Jobs))
		for name, j := range c.Jobs {
			out.Jobs[name] = j.withDefaults()
		}
	}
	return &out
}

// IsEnabled reports whether the section is on.
func (c *Config) IsEnabled() bool { return c.Enable }

var jobNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// hasShorthand reports whether the top-level keys describe a job.
func (c *Config) hasShorthand() bool {
	return c.Job.Repository != "" || len(c.Job.Paths) > 0
}

// namedJob is a job with its name and the config path it came from.
type namedJob struct {
	Name string
	Path string // config path of the job, "" for the shorthand
	Job
}

// jobs returns every configured job, sorted by name, with defaults
// filled in.
func (c *Config) jobs() []namedJob {
	var out []namedJob
	if c.hasShorthand() {
		out = append(out, namedJob{Name: ShorthandJob, Job: c.Job.withDefaults()})
	}
	for name, j := range c.Jobs {
		if name == ShorthandJob && c.hasShorthand() {
			continue // reported by Validate
		}
		out = append(out, namedJob{Name: name, Path: confkit.JoinPath("jobs", name), Job: j.withDefaults()})
	}
	slices.SortFunc(out, func(a, b namedJob) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// withDefaults fills the keys left out.
func (j Job) withDefaults() Job {
	if strings.TrimSpace(j.Schedule) == "" {
		j.Schedule = DefaultSchedule
	}
	if j.Persistent == nil {
		t := true
		j.Persistent = &t
	}
	if j.Compression == 0 {
		j.Compression = DefaultCompression
	}
	if j.Retention == nil {
		r := DefaultRetention()
		j.Retention = &r
	} else {
		r := *j.Retention
		if strings.TrimSpace(r.Schedule) == "" {
			r.Schedule = DefaultRetentionSchedule
		}
		j.Retention = &r
	}
	if j.CheckReadData == "" {
		j.CheckReadData = DefaultCheckReadData
	}
	return j
}

// policy is the engine's form of the retention rules.
func (r *Retention) policy() forget.Policy {
	return forget.Policy{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: r.KeepWithin}
}

// MaxJobs bounds backup.jobs. Each job is a goroutine, a timer, a state
// file, a line of `hostd status` and a set of metric series, and the
// service's health is a pass over every job; a host needs a job per
// repository and schedule, rarely more than a few dozen. 1,000 leaves
// room for generated configs while status stays under a few hundred KiB
// and a pass over the jobs well under a millisecond.
const MaxJobs = 1000

// Validate reports every problem of the section: missing or unknown
// jobs, paths that do not exist, schedules that do not parse, malformed
// secret references and patterns.
func (c *Config) Validate(v *confkit.Validator) {
	if !c.hasShorthand() && len(c.Jobs) == 0 {
		v.Errorf("", "no backup job: set repository and paths, or add jobs.<name>")
		return
	}
	if len(c.Jobs) > MaxJobs {
		// Each job's own problems would drown this one.
		v.Errorf("jobs", "%d jobs, at most %d: group paths into fewer jobs (one job backs up many paths)", len(c.Jobs), MaxJobs)
		return
	}
	if c.hasShorthand() {
		if _, dup := c.Jobs[ShorthandJob]; dup {
			v.Errorf(confkit.JoinPath("jobs", ShorthandJob), "job %q is already defined by the top-level repository and paths", ShorthandJob)
		}
	} else {
		c.Job.validateUnused(v)
	}
	for _, nj := range c.jobs() {
		if nj.Path != "" && !jobNameRE.MatchString(nj.Name) {
			v.Errorf(nj.Path, "job name %q must be letters, digits, '-' and '_' (at most 64)", nj.Name)
		}
		nj.Job.validate(v.At(nj.Path))
	}
	byRepo := map[string]namedJob{}
	for _, nj := range c.jobs() {
		// Forget applies a policy to the whole repository: jobs sharing
		// one must agree on it.
		key := repositoryKey(nj.Repository)
		if other, ok := byRepo[key]; ok && nj.Repository != "" && *other.Retention != *nj.Retention {
			v.Errorf(confkit.JoinPath(nj.Path, "retention"), "job %q shares repository %s with job %q but not its retention; jobs on one repository need the same retention", nj.Name, redactURL(nj.Repository), other.Name)
		} else if !ok {
			byRepo[key] = nj
		}
	}
	seen := map[string]string{}
	for _, nj := range c.jobs() {
		// Two jobs backing up the same paths into one repository would
		// forget each other's snapshots.
		key := repositoryKey(nj.Repository) + "\x00" + strings.Join(sortedClean(nj.Paths), "\x00")
		if other, ok := seen[key]; ok && nj.Repository != "" {
			v.Errorf(confkit.JoinPath(nj.Path, "paths"), "job %q backs up the same paths into the same repository as job %q", nj.Name, other)
		}
		seen[key] = nj.Name
	}
}

// validateUnused reports top-level job keys that take effect only with
// the shorthand's repository and paths. A key holding its default is not
// reported: `hostd config show` prints the top-level keys with their
// defaults, and what it prints must load again.
func (j *Job) validateUnused(v *confkit.Validator) {
	d := Job{}.withDefaults()
	if (j.Schedule != "" && j.Schedule != d.Schedule) || len(j.Exclude) > 0 || !j.Password.IsZero() ||
		(j.Retention != nil && *j.Retention != *d.Retention) || j.Check != "" {
		v.Errorf("repository", "top-level job keys (schedule, exclude, password, ...) need repository and paths; or move them under jobs.<name>")
	}
}

func sortedClean(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Clean(p)
	}
	slices.Sort(out)
	return out
}

// validate checks one job (defaults already filled in).
func (j *Job) validate(v *confkit.Validator) {
	j.validateRepository(v)
	if len(j.Paths) == 0 {
		v.Errorf("paths", "at least one path to back up is required")
	}
	for i, p := range j.Paths {
		at := fmt.Sprintf("paths[%d]", i)
		switch {
		case p == "":
			v.Errorf(at, "path must not be empty")
		case !filepath.IsAbs(p):
			v.Errorf(at, "path %q must be absolute", p)
		default:
			if _, err := os.Lstat(p); err != nil {
				if os.IsNotExist(err) {
					v.Errorf(at, "path %q does not exist", p)
				} else {
					v.Errorf(at, "path %q: %v", p, err)
				}
			}
		}
	}
	for i, e := range j.Exclude {
		if _, err := pattern.ParseExcludes([]string{e}); err != nil {
			v.Errorf(fmt.Sprintf("exclude[%d]", i), "%v", err)
		}
	}
	checkSchedule(v, "schedule", j.Schedule)
	if j.RandomizedDelay < 0 {
		v.Errorf("randomized_delay", "must not be negative")
	}
	if j.Password.IsZero() {
		v.Errorf("password", "a secret reference to the repository passphrase is required (file:PATH, cred:NAME, sops:FILE#key or env:NAME)")
	} else if _, err := secrets.ParseRef(string(j.Password)); err != nil {
		v.Errorf("password", "%v", err)
	}
	if j.Compression != -1 && (j.Compression < 1 || j.Compression > 22) {
		v.Errorf("compression", "zstd level must be 1..22, or -1 for none, not %d", j.Compression)
	}
	if r := j.Retention; r != nil {
		rv := v.At("retention")
		for name, n := range map[string]int{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
			"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly} {
			if n < 0 {
				rv.Errorf(name, "must not be negative")
			}
		}
		if r.KeepWithin < 0 {
			rv.Errorf("keep_within", "must not be negative")
		}
		if r.policy().Empty() {
			rv.Errorf("", "keeps no snapshot: set at least one keep_* rule")
		}
		checkSchedule(rv, "schedule", r.Schedule)
	}
	if j.Check != "" {
		checkSchedule(v, "check", j.Check)
	}
	if err := checkReadData(j.CheckReadData); err != nil {
		v.Errorf("check_read_data", "%v", err)
	}
	for i, t := range j.Tags {
		if t == "" || strings.ContainsAny(t, ",\n") {
			v.Errorf(fmt.Sprintf("tags[%d]", i), "tag %q must be non-empty without commas or newlines", t)
		}
	}
}

func checkSchedule(v *confkit.Validator, path, expr string) {
	s, err := schedule.Parse(expr)
	if err != nil {
		v.Errorf(path, "%v", err)
		return
	}
	if s.Next(time.Now()).IsZero() {
		v.Errorf(path, "schedule %q never elapses again", expr)
	}
}

// validateRepository checks the repository URL (backend.CheckURL: the
// forms backend.Open takes, without credentials in them) and that the
// options of one kind of repository are not given to another.
func (j *Job) validateRepository(v *confkit.Validator) {
	repo := j.Repository
	switch {
	case repo == "":
		v.Errorf("repository", "repository is required: an absolute directory, sftp://user@host/path, s3:URL/BUCKET, rest:URL or rclone:REMOTE:PATH")
		return
	case strings.HasPrefix(repo, "sftp://"):
		u, err := url.Parse(repo)
		if err != nil || u.Host == "" || u.Path == "" {
			v.Errorf("repository", "repository %q: want sftp://user@host[:port]/path", redactURL(repo))
		} else if _, hasPassword := u.User.Password(); hasPassword {
			v.Errorf("repository", "repository URL must not hold a password; hostd authenticates with SSH keys or the agent")
		}
	case backend.Remote(repo) || strings.Contains(repo, "://"):
		// s3:, rest:, rclone: (credentials come from the s3, rest and
		// rclone keys, never the URL), file://, or an unknown scheme.
		if err := backend.CheckURL(repo); err != nil {
			v.Errorf("repository", "%v", err)
		}
	case !filepath.IsAbs(repo):
		v.Errorf("repository", "repository %q must be an absolute directory", repo)
	}
	kind, _, _ := strings.Cut(repo, ":")
	for _, o := range []struct {
		key, kind string
		set       bool
	}{
		{"s3", "s3", j.S3 != (S3{})},
		{"rest", "rest", j.REST != (REST{})},
		{"rclone", "rclone", j.Rclone.Program != "" || len(j.Rclone.Args) > 0 || len(j.Rclone.Env) > 0},
	} {
		if o.set && kind != o.kind {
			v.Errorf(o.key, "%s options are for %s: repositories, and the repository is %s", o.key, o.kind, redactURL(repo))
		}
	}
	switch {
	case j.CAFile != "" && kind != "s3" && kind != "rest":
		v.Errorf("ca_file", "a CA file applies to s3: and rest: repositories only")
	case j.CAFile != "" && !filepath.IsAbs(j.CAFile):
		v.Errorf("ca_file", "%q must be an absolute path", j.CAFile)
	}
	if b := j.S3.BucketLookup; b != "" && b != "path" && b != "dns" {
		v.Errorf("s3.bucket_lookup", "%q: want path or dns", b)
	}
	for name := range j.Rclone.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			v.Errorf("rclone.env", "environment variable name %q is not valid", name)
		}
	}
	for _, l := range []struct {
		key string
		n   service.ByteSize
	}{{"limit_upload", j.LimitUpload}, {"limit_download", j.LimitDownload}} {
		if l.n != 0 && kind != "s3" && kind != "rest" && kind != "rclone" {
			v.Errorf(l.key, "bandwidth limits apply to s3:, rest: and rclone: repositories only")
		}
	}
}

// checkReadData validates the share of data a check reads: "N%" or "n/m".
func checkReadData(s string) error {
	var a, b int
	var pct float64
	switch {
	case strings.HasSuffix(s, "%"):
		if _, err := fmt.Sscanf(s, "%g%%", &pct); err != nil || pct <= 0 || pct > 100 {
			return fmt.Errorf("%q: want a percentage in (0%%, 100%%] or n/m", s)
		}
	case strings.Contains(s, "/"):
		if _, err := fmt.Sscanf(s, "%d/%d", &a, &b); err != nil || b < 1 || a < 1 || a > b {
			return fmt.Errorf("%q: want n/m with 1 <= n <= m, or a percentage", s)
		}
	default:
		return fmt.Errorf("%q: want a percentage such as 5%% or n/m", s)
	}
	return nil
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
