package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/hostd/hostd/internal/codepages"
	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/secrets"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// backupFlags are the repository flags every backup verb shares.
type backupFlags struct {
	g            *globals
	repo         string
	passwordFile string
	passwordCmd  string
	cacheDir     string
	noCache      bool
	knownHosts   string
	identities   []string
	keyHint      string
	remote       remoteFlags
	// prefetchSnapshots: the verb reads the snapshots next (restore).
	prefetchSnapshots bool
}

// remoteFlags fill backend.Options for S3, REST and rclone repositories.
// Credentials are secret references, checked when the flag is parsed.
type remoteFlags struct {
	s3AccessKey, s3SecretKey refFlag
	s3Region                 string
	s3BucketLookup           lookupFlag
	s3StorageClass           string
	restUser, restPassword   refFlag
	rcloneProgram            string
	limitUpload              sizeFlag
	limitDownload            sizeFlag
	caCert                   string
}

// add registers the flags on fs (the backup command's persistent flags:
// every verb takes them).
func (r *remoteFlags) add(fs *pflag.FlagSet) {
	fs.Var(&r.s3AccessKey, "s3-access-key", "S3 access key: a secret reference, env:NAME, file:PATH, cred:NAME or sops:FILE#key (default env:AWS_ACCESS_KEY_ID)")
	fs.Var(&r.s3SecretKey, "s3-secret-key", "S3 secret key: a secret reference (default env:AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&r.s3Region, "s3-region", "", "S3 region (default $AWS_DEFAULT_REGION, else us-east-1)")
	fs.Var(&r.s3BucketLookup, "s3-bucket-lookup", "S3 bucket addressing: path (HOST/BUCKET) or dns (BUCKET.HOST) (default dns for amazonaws.com, else path)")
	fs.StringVar(&r.s3StorageClass, "s3-storage-class", "", "S3 storage class of the objects written, e.g. STANDARD_IA (default the bucket's)")
	fs.Var(&r.restUser, "rest-user", "REST server user name: a secret reference (default none)")
	fs.Var(&r.restPassword, "rest-password", "REST server password: a secret reference (default none)")
	fs.StringVar(&r.rcloneProgram, "rclone-program", "", "rclone executable for rclone: repositories (default rclone from $PATH)")
	fs.Var(&r.limitUpload, "limit-upload", "cap uploads to S3, REST and rclone repositories at SIZE per second, e.g. 10MiB (default none)")
	fs.Var(&r.limitDownload, "limit-download", "cap downloads from S3, REST and rclone repositories at SIZE per second (default none)")
	fs.StringVar(&r.caCert, "cacert", "", "PEM file of the certificate authorities trusted for s3:https:// and rest:https:// repositories, in place of the system's (default the system's)")
}

// options returns backend options with these flags filled in; secret
// references are resolved from the process's environment when the
// backend opens.
func (r *remoteFlags) options(o backend.Options) backend.Options {
	o.S3.AccessKey, o.S3.SecretKey = r.s3AccessKey.ref, r.s3SecretKey.ref
	o.S3.Region, o.S3.BucketLookup, o.S3.StorageClass = r.s3Region, string(r.s3BucketLookup), r.s3StorageClass
	o.REST.Username, o.REST.Password = r.restUser.ref, r.restPassword.ref
	o.Rclone.Program = r.rcloneProgram
	o.HTTP.LimitUpload, o.HTTP.LimitDownload = int64(r.limitUpload), int64(r.limitDownload)
	o.HTTP.CACertFile = r.caCert
	return o
}

// lookupFlag is --s3-bucket-lookup: path or dns.
type lookupFlag string

func (l *lookupFlag) String() string { return string(*l) }
func (l *lookupFlag) Type() string   { return "path|dns" }
func (l *lookupFlag) Set(v string) error {
	if v != "path" && v != "dns" {
		return fmt.Errorf("%q: want path or dns", v)
	}
	*l = lookupFlag(v)
	return nil
}

// refFlag is a secret reference (env:NAME, file:PATH, cred:NAME,
// sops:FILE#key or an absolute path), never a secret itself. A value
// that is not a reference is kept out of every message (pflag would
// quote it: it may be a key pasted by mistake) and refused by check.
type refFlag struct {
	ref secrets.Ref
	bad bool
}

func (r *refFlag) String() string { return r.ref.String() }
func (r *refFlag) Type() string   { return "ref" }
func (r *refFlag) Set(v string) error {
	ref, err := secrets.ParseRef(v)
	r.ref, r.bad = ref, err != nil
	return nil
}

// check refuses the reference flags given something else.
func (r *remoteFlags) check(cmd *cobra.Command) error {
	for name, f := range map[string]*refFlag{"s3-access-key": &r.s3AccessKey, "s3-secret-key": &r.s3SecretKey, "rest-user": &r.restUser, "rest-password": &r.restPassword} {
		if f.bad {
			return usageError(cmd, fmt.Errorf("--%s: not a secret reference: want env:NAME, file:PATH, cred:NAME, sops:FILE#key or an absolute path (the value is not shown: it may be a secret)", name))
		}
	}
	return nil
}

// newBackupCmd is "hostd backup": the engine's verbs, working on a
// repository directly (the daemon's scheduled jobs add run and jobs).
func newBackupCmd(g *globals) *cobra.Command {
	f := &backupFlags{g: g}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Deduplicating, compressed, encrypted backups (repository verbs and scheduled jobs)",
		Long: `Work on a backup repository: a local directory, sftp://user@host[:port]/path,
s3:https://HOST/BUCKET[/PREFIX], rest:https://HOST/PATH or rclone:REMOTE:PATH.
Credentials of S3 and REST come from secret references (--s3-access-key env:NAME,
file:PATH, cred:NAME, sops:FILE#key), never from the URL.

The passphrase comes from --password-file, $HOSTD_BACKUP_PASSWORD, or a prompt
on a terminal. The repository comes from --repo or $HOSTD_BACKUP_REPOSITORY.
Exit status: 0 success, 1 error, 3 partial backup (some files could not be read).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.repo, "repo", "r", os.Getenv("HOSTD_BACKUP_REPOSITORY"), "repository: a path, sftp://user@host[:port]/path, s3:URL/BUCKET[/PREFIX], rest:URL or rclone:REMOTE:PATH ($HOSTD_BACKUP_REPOSITORY)")
	pf.StringVar(&f.passwordFile, "password-file", os.Getenv("HOSTD_BACKUP_PASSWORD_FILE"), "read the passphrase from this file ($HOSTD_BACKUP_PASSWORD_FILE)")
	pf.StringVar(&f.passwordCmd, "password-command", os.Getenv("HOSTD_BACKUP_PASSWORD_COMMAND"), "run this shell command and read the passphrase from its output, e.g. 'pass show backup' ($HOSTD_BACKUP_PASSWORD_COMMAND; 60 s deadline)")
	pf.StringVar(&f.cacheDir, "cache-dir", "", "file cache directory (default $XDG_CACHE_HOME/hostd/backup)")
	pf.BoolVar(&f.noCache, "no-cache", false, "read every file instead of trusting the file cache")
	pf.StringVar(&f.keyHint, "key-hint", os.Getenv("HOSTD_KEY_HINT"), "key file to try first: its name or a unique prefix, as hostd backup key list shows ($HOSTD_KEY_HINT)")
	pf.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file for sftp (default ~/.ssh/known_hosts)")
	pf.StringSliceVar(&f.identities, "identity", nil, "private key for sftp (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa, and the agent)")
	f.remote.add(pf)
	// The root's hook (--json checks) runs first: cobra runs only the
	// nearest PersistentPreRunE.
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if root := c.Root(); root != cmd && root.PersistentPreRunE != nil {
			if err := root.PersistentPreRunE(c, args); err != nil {
				return err
			}
		}
		return f.remote.check(c)
	}
	cmd.AddCommand(
		f.initCmd(), f.keyCmd(), f.createCmd(), f.snapshotsCmd(), f.lsCmd(), f.diffCmd(),
		f.restoreCmd(), f.dumpCmd(), f.checkCmd(), f.forgetCmd(), f.tagCmd(), f.findCmd(), f.listCmd(), f.catCmd(), f.pruneCmd(), f.repairCmd(), f.breakLockCmd(), f.statsCmd(), f.importCmd(),
		f.rewriteCmd(), f.mountCmd(), f.copyCmd(),
	)
	return cmd
}

func (f *backupFlags) backendOptions() backend.Options {
	return f.remote.options(backend.Options{SFTP: backend.SFTPOptions{KnownHosts: f.knownHosts, IdentityFiles: f.identities}})
}

func (f *backupFlags) repoURL() (string, error) {
	if f.repo == "" {
		return "", errors.New("no repository: give --repo or set HOSTD_BACKUP_REPOSITORY")
	}
	return f.repo, nil
}

// passwordCommandTimeout bounds --password-command: long enough for a
// pinentry or a hardware token's touch, short enough that a command
// that hangs does not hold a scheduled job forever.
const passwordCommandTimeout = 60 * time.Second

// password reads the passphrase: --password-file, --password-command,
// $HOSTD_BACKUP_PASSWORD, else a terminal prompt (twice when confirm is
// set).
func (f *backupFlags) password(cmd *cobra.Command, prompt string, confirm bool) ([]byte, error) {
	if f.passwordFile != "" && f.passwordCmd != "" {
		return nil, usageError(cmd, errors.New("give --password-file or --password-command, not both"))
	}
	if f.passwordCmd != "" {
		return runPasswordCommand(cmd.Context(), f.passwordCmd, cmd.ErrOrStderr(), passwordCommandTimeout)
	}
	if f.passwordFile != "" {
		b, err := safefile.Read(f.passwordFile, safefile.SecretLimit)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("password file %s is empty", f.passwordFile)
		}
		return b, nil
	}
	if p := os.Getenv("HOSTD_BACKUP_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	return promptPassword(cmd, prompt, "--password-file or set HOSTD_BACKUP_PASSWORD", confirm)
}

// runPasswordCommand runs command with sh -c and returns the first line
// of its output (at most safefile.SecretLimit bytes) without the line
// end. Its stderr goes to stderr, its stdin is ours (for a pinentry);
// it is killed after timeout.
func runPasswordCommand(ctx context.Context, command string, stderr io.Writer, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Stdin = os.Stdin
	c.Stderr = stderr
	c.WaitDelay = time.Second
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("password command: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("password command: %w", err)
	}
	b, rerr := safefile.ReadAll(out, "password command output", safefile.SecretLimit)
	werr := c.Wait()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("password command: no answer within %s", timeout)
	case werr != nil:
		return nil, fmt.Errorf("password command: %w", werr)
	case rerr != nil:
		return nil, fmt.Errorf("password command: %w", rerr)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, "\r")
	if len(b) == 0 {
		return nil, errors.New("password command printed no passphrase")
	}
	return b, nil
}

// promptPassword asks on the terminal; sources says, for the error when
// there is none, how else the passphrase can be given.
func promptPassword(cmd *cobra.Command, prompt, sources string, confirm bool) ([]byte, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no %s: give %s (stdin is not a terminal)", prompt, sources)
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt+": ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		fmt.Fprint(cmd.ErrOrStderr(), "repeat "+prompt+": ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("passphrases do not match")
		}
	}
	return p, nil
}

// open opens the repository, adding the init hint to "not a repository".
// withRepo makes a RunE that opens the repository, runs fn with it and
// closes it again.
func (f *backupFlags) withRepo(fn func(cmd *cobra.Command, args []string, r *backup.Repository) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		r, err := f.open(cmd)
		if err != nil {
			return err
		}
		defer r.Close()
		return fn(cmd, args, r)
	}
}

func (f *backupFlags) open(cmd *cobra.Command) (*backup.Repository, error) {
	url, err := f.repoURL()
	if err != nil {
		return nil, err
	}
	pw, err := f.password(cmd, "repository passphrase", false)
	if err != nil {
		return nil, err
	}
	r, err := backup.Open(cmd.Context(), url, pw, backup.OpenOptions{Backend: f.backendOptions(), CacheDir: f.cacheDir, NoCache: f.noCache, Logger: cliLogger(cmd), KeyHint: f.keyHint,
		PrefetchSnapshots: f.prefetchSnapshots})
	// The passphrase derivation (argon2id) is done: give its memory back
	// before the real work.
	debug.FreeOSMemory()
	// Start-up code (flag parsing, config, key derivation) is done too:
	// release the executable's pages; the engine maps back what it runs.
	_, _ = codepages.Release()
	limitHeap(72<<20, 50)
	if errors.Is(err, backup.ErrNotRepository) {
		return nil, fmt.Errorf("%w\nhint: create one with: hostd backup init --repo %s", err, url)
	}
	return r, err
}

// limitHeap keeps the heap of this short-lived process tight, unless
// GOGC or GOMEMLIMIT say otherwise: a collection when the heap grew by
// gcPercent, and a soft limit of three times what is live now (the loaded
// index), at least floor. Restore, check and prune keep their read and
// decode buffers in the heap and run under 72 MiB: at 64 MiB a first
// backup, which then did too, ran the collector and the scavenger nearly
// back to back (11% more CPU on the Go toolchain tree).
func limitHeap(floor int64, gcPercent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	debug.SetMemoryLimit(max(floor, 3*int64(ms.HeapAlloc)))
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// cliLogger prints the engine's warnings (stale locks broken, damaged
// index files) to stderr.
func cliLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
