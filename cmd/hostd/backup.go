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
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hostd/hostd/internal/codepages"
	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/pkg/backup"
	"github.com/hostd/hostd/pkg/backup/backend"
)

// backupFlags are the repository flags every backup verb shares.
type backupFlags struct {
	g            *globals
	repo         string
	passwordFile string
	cacheDir     string
	noCache      bool
	knownHosts   string
	identities   []string
}

// newBackupCmd is "hostd backup": the engine's verbs, working on a
// repository directly (the daemon's scheduled jobs add run and jobs).
func newBackupCmd(g *globals) *cobra.Command {
	f := &backupFlags{g: g}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Deduplicating, compressed, encrypted backups (repository verbs and scheduled jobs)",
		Long: `Work on a backup repository: a local directory or sftp://user@host[:port]/path.

The passphrase comes from --password-file, $HOSTD_BACKUP_PASSWORD, or a prompt
on a terminal. The repository comes from --repo or $HOSTD_BACKUP_REPOSITORY.
Exit status: 0 success, 1 error, 3 partial backup (some files could not be read).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.repo, "repo", "r", os.Getenv("HOSTD_BACKUP_REPOSITORY"), "repository: a path or sftp://user@host[:port]/path ($HOSTD_BACKUP_REPOSITORY)")
	pf.StringVar(&f.passwordFile, "password-file", os.Getenv("HOSTD_BACKUP_PASSWORD_FILE"), "read the passphrase from this file ($HOSTD_BACKUP_PASSWORD_FILE)")
	pf.StringVar(&f.cacheDir, "cache-dir", "", "file cache directory (default $XDG_CACHE_HOME/hostd/backup)")
	pf.BoolVar(&f.noCache, "no-cache", false, "read every file instead of trusting the file cache")
	pf.StringVar(&f.knownHosts, "known-hosts", "", "known_hosts file for sftp (default ~/.ssh/known_hosts)")
	pf.StringSliceVar(&f.identities, "identity", nil, "private key for sftp (default ~/.ssh/id_ed25519, id_ecdsa, id_rsa, and the agent)")
	cmd.AddCommand(
		f.initCmd(), f.keyCmd(), f.createCmd(), f.snapshotsCmd(), f.lsCmd(), f.diffCmd(),
		f.restoreCmd(), f.dumpCmd(), f.checkCmd(), f.forgetCmd(), f.pruneCmd(), f.repairCmd(), f.breakLockCmd(), f.statsCmd(),
	)
	return cmd
}

func (f *backupFlags) backendOptions() backend.Options {
	return backend.Options{SFTP: backend.SFTPOptions{KnownHosts: f.knownHosts, IdentityFiles: f.identities}}
}

func (f *backupFlags) repoURL() (string, error) {
	if f.repo == "" {
		return "", errors.New("no repository: give --repo or set HOSTD_BACKUP_REPOSITORY")
	}
	return f.repo, nil
}

// password reads the passphrase: --password-file, $HOSTD_BACKUP_PASSWORD,
// else a terminal prompt (twice when confirm is set).
func (f *backupFlags) password(cmd *cobra.Command, prompt string, confirm bool) ([]byte, error) {
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
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
	r, err := backup.Open(cmd.Context(), url, pw, backup.OpenOptions{Backend: f.backendOptions(), CacheDir: f.cacheDir, NoCache: f.noCache, Logger: cliLogger(cmd)})
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

func (f *backupFlags) initCmd() *cobra.Command {
	var compression int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := f.repoURL()
			if err != nil {
				return err
			}
			pw, err := f.password(cmd, "new repository passphrase", true)
			if err != nil {
				return err
			}
			if compression == 0 {
				// 0 means "default" to the Go API; on the command line
				// it is more likely a wish for none.
				return fmt.Errorf("--compression 0: give a zstd level 1..%d, or -1 for none", backup.MaxCompression)
			}
			if err := backup.Init(cmd.Context(), url, pw, backup.InitOptions{Compression: compression, Backend: f.backendOptions()}); err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, map[string]string{"repository": url})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created repository at %s\nkeep the passphrase safe: without it the data cannot be read\n", url)
			return nil
		},
	}
	cmd.Flags().IntVar(&compression, "compression", 3, "zstd level 1..22, or -1 for none")
	return cmd
}

// compressionName describes a repository's zstd level.
func compressionName(level int) string {
	if level == 0 {
		return "none"
	}
	return fmt.Sprintf("zstd %d", level)
}

func (f *backupFlags) keyCmd() *cobra.Command {
	var newFile string
	cmd := &cobra.Command{Use: "key", Short: "Manage repository passphrases"}
	newPassword := func(cmd *cobra.Command) ([]byte, error) {
		if newFile != "" {
			b, err := os.ReadFile(newFile)
			if err != nil {
				return nil, fmt.Errorf("read new password file: %w", err)
			}
			if b = bytes.TrimRight(b, "\r\n"); len(b) == 0 {
				return nil, errors.New("new password file is empty")
			}
			return b, nil
		}
		if p := os.Getenv("HOSTD_BACKUP_NEW_PASSWORD"); p != "" {
			return []byte(p), nil
		}
		return promptPassword(cmd, "new passphrase", "--new-password-file or set HOSTD_BACKUP_NEW_PASSWORD", true)
	}
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a passphrase (the existing ones keep working)",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			pw, err := newPassword(cmd)
			if err != nil {
				return err
			}
			name, err := r.AddKey(cmd.Context(), pw, nil)
			if err != nil {
				return err
			}
			return f.printKey(cmd, "added key", name)
		}),
	}
	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Replace the passphrase in use",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			pw, err := newPassword(cmd)
			if err != nil {
				return err
			}
			name, err := r.ChangePassword(cmd.Context(), pw, nil)
			if err != nil {
				return err
			}
			return f.printKey(cmd, "replaced passphrase, new key", name)
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List key files",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			keys, err := r.Keys(cmd.Context())
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, map[string]any{"keys": keys, "in_use": r.KeyInUse()})
			}
			for _, k := range keys {
				mark := " "
				if k == r.KeyInUse() {
					mark = "*"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", mark, k)
			}
			return nil
		}),
	}
	cmd.PersistentFlags().StringVar(&newFile, "new-password-file", "", "read the new passphrase from this file ($HOSTD_BACKUP_NEW_PASSWORD)")
	cmd.AddCommand(add, passwd, list)
	return cmd
}

func (f *backupFlags) printKey(cmd *cobra.Command, msg, name string) error {
	if f.g.json {
		return printJSON(cmd, map[string]string{"key": name})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", msg, name[:8])
	return nil
}

func (f *backupFlags) createCmd() *cobra.Command {
	var o backup.BackupOptions
	cmd := &cobra.Command{
		Use:     "create PATH...",
		Aliases: []string{"backup"},
		Short:   "Back up paths as a new snapshot",
		Long: `Back up paths as a new snapshot. Excludes use borg's pattern styles: sh: (default),
fm:, re:, pp:, pf:. --patterns-from reads borg pattern files (+ include, - exclude,
! exclude without descending, P style, R path to back up). Exit status 3 means some
files could not be read, or a path did not exist: the snapshot exists without them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(o.ExcludeFiles) == 0 {
				return errors.New("no paths to back up: give PATH... (or R lines in a --patterns-from file)")
			}
			return nil
		},
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			o.Paths = args
			prog := newProgress(cmd, f.g.json, "backup")
			if prog.shown() {
				// Progress totals cost a second walk of the paths.
				o.Progress = prog.update
			}
			o.Warn = func(p string, err error) { prog.warn(p, err) }
			// A backup keeps its large buffers (segments, packs) outside
			// the Go heap; at most about 33 MiB is live in it on a first
			// backup of the Go toolchain tree (zstd encoders, read
			// buffers, the file cache, the trees in progress), so the
			// 48 MiB limit leaves the collector room to run only when the
			// heap doubled: 16 collections instead of 22 at GOGC=50, 4%
			// less CPU, the same peak RSS. A 40 MiB limit saved 4 MiB of
			// RSS for 7% more CPU; 56 MiB cost 8 MiB for nothing.
			limitHeap(48<<20, 100)
			sum, err := r.Backup(cmd.Context(), o)
			prog.finish()
			if err != nil {
				if sum != nil && errors.Is(err, context.Canceled) {
					fmt.Fprintf(cmd.ErrOrStderr(), "interrupted: %s added and kept for the next run, no snapshot written\n", humanBytes(sum.BytesAdded))
				}
				return err
			}
			if f.g.json {
				// One JSON object per line: progress lines, then this.
				if err := printJSONLine(cmd.OutOrStdout(), map[string]any{"summary": sum}); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "snapshot %s saved\n", sum.SnapshotID[:8])
				fmt.Fprintf(w, "files:  %d new, %d changed, %d unmodified\n", sum.FilesNew, sum.FilesChanged, sum.FilesUnmodified)
				fmt.Fprintf(w, "data:   %s total, %s read, %s added (%s stored)\n", humanBytes(sum.BytesTotal), humanBytes(sum.BytesRead), humanBytes(sum.BytesAdded), humanBytes(sum.BytesStored))
				fmt.Fprintf(w, "time:   %s\n", sum.Duration.Round(time.Millisecond))
				for _, warn := range sum.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
				}
			}
			if sum.Errors > 0 {
				return &exitError{code: 3, err: fmt.Errorf("partial backup: %d paths could not be read (named above)", sum.Errors)}
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&o.Excludes, "exclude", "e", nil, "exclude paths matching PATTERN (borg style, default sh:)")
	fl.StringArrayVar(&o.ExcludeFiles, "patterns-from", nil, "read include/exclude patterns from FILE (borg pattern file)")
	fl.BoolVar(&o.ExcludeCaches, "exclude-caches", false, "skip directories holding a CACHEDIR.TAG")
	fl.StringArrayVar(&o.ExcludeIfPresent, "exclude-if-present", nil, "skip directories holding a file called NAME")
	fl.BoolVarP(&o.OneFileSystem, "one-file-system", "x", false, "do not cross file system boundaries")
	fl.StringArrayVar(&o.Tags, "tag", nil, "tag the snapshot (repeatable)")
	fl.StringVar(&o.Hostname, "hostname", "", "host name recorded in the snapshot (default: this host)")
	return cmd
}

func (f *backupFlags) snapshotsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			snaps, err := r.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, snaps)
			}
			w := table(cmd)
			fmt.Fprintln(w, "ID\tTIME\tHOST\tTAGS\tPATHS\tSIZE")
			for _, s := range snaps {
				size := ""
				if s.Summary != nil {
					size = humanBytes(s.Summary.BytesTotal)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Hostname, strings.Join(s.Tags, ","), strings.Join(s.Paths, " "), size)
			}
			return w.Flush()
		}),
	}
}

func (f *backupFlags) lsCmd() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List files of a snapshot (\"latest\" or an ID prefix)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			dir := "/"
			if len(args) == 2 {
				dir = args[1]
			}
			entries, err := r.Ls(cmd.Context(), args[0], dir)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, entries)
			}
			w := table(cmd)
			for _, e := range entries {
				p := quoteName(e.Path)
				if e.LinkTarget != "" {
					p += " -> " + quoteName(e.LinkTarget)
				}
				if long {
					owner := e.User
					if owner == "" {
						owner = fmt.Sprint(e.UID)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Type, e.Mode, owner, e.Size, e.MTime.Local().Format("2006-01-02 15:04:05"), p)
				} else {
					fmt.Fprintln(w, p)
				}
			}
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show type, mode, owner, size and mtime")
	return cmd
}

// quoteName makes names with newlines or invalid UTF-8 printable on one
// line.
func quoteName(s string) string {
	if strings.ContainsAny(s, "\n\t\r") || !isPrintable(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || r < 0x20 {
			return false
		}
	}
	return true
}

func (f *backupFlags) diffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff SNAPSHOT-A SNAPSHOT-B",
		Short: "Show what changed between two snapshots (+ added, - removed, M modified, T type changed)",
		Args:  cobra.ExactArgs(2),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			changes, err := r.Diff(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, changes)
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", c.Op, quoteName(c.Path))
			}
			return nil
		}),
	}
}

func (f *backupFlags) restoreCmd() *cobra.Command {
	var o backup.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR",
		Short: "Restore a snapshot into a directory (refuses a non-empty one without --overwrite)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Target == "" {
				return errors.New("restore: --target is required")
			}
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			prog := newProgress(cmd, f.g.json, "restore")
			if prog.shown() {
				o.Progress = prog.update
			}
			o.Warn = func(p string, err error) { prog.warn(p, err) }
			sum, err := r.Restore(cmd.Context(), args[0], o)
			prog.finish()
			if errors.Is(err, backup.ErrTargetNotEmpty) {
				return fmt.Errorf("%w\nhint: pass --overwrite to restore into it", err)
			}
			if err != nil {
				return err
			}
			if f.g.json {
				if err := printJSONLine(cmd.OutOrStdout(), map[string]any{"summary": sum}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s to %s: %d files, %d dirs, %d hard links, %d special, %s in %s\n",
					sum.SnapshotID[:8], o.Target, sum.Files, sum.Dirs, sum.HardLinks, sum.Special, humanBytes(sum.Bytes), sum.Duration.Round(time.Millisecond))
			}
			if sum.Errors > 0 {
				return &exitError{code: 3, err: fmt.Errorf("partial restore: %d paths failed (named above)", sum.Errors)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.Target, "target", "t", "", "directory to restore into")
	cmd.Flags().StringArrayVarP(&o.Include, "include", "i", nil, "restore only this snapshot path and what is below it (repeatable)")
	cmd.Flags().BoolVar(&o.Overwrite, "overwrite", false, "restore into a non-empty target, replacing files")
	cmd.Flags().BoolVar(&o.NoLock, "no-lock", false, "do not lock the repository (for one that cannot be written: read-only media, a full disk)")
	return cmd
}

func (f *backupFlags) dumpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dump SNAPSHOT FILE",
		Short: "Write one file of a snapshot to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			return r.Dump(cmd.Context(), args[0], args[1], cmd.OutOrStdout())
		}),
	}
}

func (f *backupFlags) checkCmd() *cobra.Command {
	var o backup.CheckOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify repository structure, and with --read-data every blob",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			res, err := r.Check(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				if err := printJSON(cmd, res); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%d snapshots, %d packs, %d packs read, %d blobs verified\n", res.Snapshots, res.Packs, res.PacksRead, res.BlobsRead)
				for _, p := range res.Warnings {
					fmt.Fprintf(w, "warning: %s\n", p)
				}
				for _, p := range res.Errors {
					fmt.Fprintf(w, "error: %s\n", p)
				}
				for _, a := range res.Affected {
					fmt.Fprintf(w, "snapshot %s has damaged files:\n", a.Snapshot[:8])
					for _, p := range a.Paths {
						fmt.Fprintf(w, "  %s\n", quoteName(p))
					}
				}
				if res.OK() {
					fmt.Fprintln(w, "no errors found")
				} else if len(res.DamagedPacks) > 0 {
					fmt.Fprintln(w, "hint: hostd backup repair drops the damaged data, so the next backup of the affected paths stores it again")
				}
			}
			if !res.OK() {
				return &exitError{code: 1, err: fmt.Errorf("check found %d errors", len(res.Errors))}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&o.ReadData, "read-data", false, "read, decrypt and verify every pack")
	cmd.Flags().BoolVar(&o.NoLock, "no-lock", false, "do not lock the repository (for one that cannot be written: read-only media, a full disk)")
	cmd.Flags().StringVar(&o.ReadDataSubset, "read-data-subset", "", "verify only a subset of packs: PERCENT% (random) or n/m")
	return cmd
}

func (f *backupFlags) forgetCmd() *cobra.Command {
	var p backup.RetentionPolicy
	var dry, prune bool
	cmd := &cobra.Command{
		Use:   "forget",
		Short: "Remove snapshots not kept by the policy (restic's rule; run prune to free space)",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			res, err := r.Forget(cmd.Context(), p, dry)
			if err != nil {
				return err
			}
			out := map[string]any{"forget": res}
			if prune && !dry {
				pr, err := r.Prune(cmd.Context(), backup.PruneOptions{})
				if err != nil {
					return err
				}
				out["prune"] = pr
			}
			if f.g.json {
				return printJSON(cmd, out)
			}
			w := table(cmd)
			fmt.Fprintln(w, "ACTION\tID\tTIME\tHOST\tREASONS")
			for _, e := range res.Keep {
				fmt.Fprintf(w, "keep\t%s\t%s\t%s\t%s\n", e.ShortID, e.Time.Local().Format("2006-01-02 15:04:05"), e.Hostname, strings.Join(e.Reasons, ","))
			}
			verb := "remove"
			if dry {
				verb = "would remove"
			}
			for _, e := range res.Remove {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", verb, e.ShortID, e.Time.Local().Format("2006-01-02 15:04:05"), e.Hostname)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if pr, ok := out["prune"].(*backup.PruneResult); ok {
				printPrune(cmd, pr)
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	fl.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the N newest hours with snapshots")
	fl.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the N newest days with snapshots")
	fl.IntVar(&p.Weekly, "keep-weekly", 0, "same per ISO week")
	fl.IntVar(&p.Monthly, "keep-monthly", 0, "same per month")
	fl.IntVar(&p.Yearly, "keep-yearly", 0, "same per year")
	fl.Var((*withinFlag)(&p.Within), "keep-within", "keep every snapshot younger than this before the newest (e.g. 72h, 7d, 2w, 1y; m is minutes)")
	fl.BoolVarP(&dry, "dry-run", "n", false, "only show what would be removed")
	fl.BoolVar(&prune, "prune", false, "run prune afterwards")
	return cmd
}

// withinFlag is --keep-within: a duration in the config file's units
// (Go's plus d, w and y).
type withinFlag time.Duration

func (w *withinFlag) String() string { return time.Duration(*w).String() }
func (w *withinFlag) Type() string   { return "duration" }
func (w *withinFlag) Set(s string) error {
	d, err := confkit.ParseDuration(s)
	if err != nil {
		return err
	}
	*w = withinFlag(d)
	return nil
}

func printPrune(cmd *cobra.Command, pr *backup.PruneResult) {
	verb := "deleted"
	if pr.DryRun {
		verb = "would delete"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "prune: %d packs, %s unused of %s; %s %d packs, repacked %d into %d, freed %s\n",
		pr.PacksTotal, humanBytes(pr.BytesUnused), humanBytes(pr.BytesBefore), verb, pr.PacksDeleted, pr.PacksRepacked, pr.PacksWritten, humanBytes(pr.BytesFreed))
	if pr.TempFiles > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "prune: %s %d temporary files of interrupted writes (%s)\n", verb, pr.TempFiles, humanBytes(pr.TempBytes))
	}
}

func (f *backupFlags) pruneCmd() *cobra.Command {
	var o backup.PruneOptions
	var maxUnused float64
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot uses, repacking partly used packs",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			o.MaxUnused = &maxUnused
			res, err := r.Prune(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			printPrune(cmd, res)
			return nil
		}),
	}
	cmd.Flags().Float64Var(&maxUnused, "max-unused", 5, "tolerated unused space in partly used packs, percent of the repository (0 repacks every partly used pack)")
	cmd.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "only show what would be deleted")
	return cmd
}

func (f *backupFlags) repairCmd() *cobra.Command {
	var o backup.RepairOptions
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Read every pack and drop damaged data, so the next backup stores it again",
		Long: `Read, decrypt and verify every pack. Intact blobs of damaged packs are
stored in new packs, a new index lists only intact blobs, and the damaged
packs are deleted. Until then, backups of content whose stored copy is
damaged refer to that copy, and prune cannot repack it.

Snapshots that used lost data are listed; their files restore in full
again once a backup has stored the same content anew, so back up the
affected paths after a repair.`,
		Args: cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			res, err := r.Repair(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, res)
			}
			w := cmd.OutOrStdout()
			if res.DryRun {
				fmt.Fprintf(w, "repair: %d packs read, %d damaged, %d missing; would store %d intact blobs of damaged packs again and drop %d lost blobs\n",
					res.PacksRead, res.PacksDamaged, res.PacksMissing, res.BlobsSalvaged, res.BlobsLost)
			} else {
				fmt.Fprintf(w, "repair: %d packs read, %d damaged, %d missing; stored %d intact blobs of damaged packs again in %d packs, dropped %d lost blobs, replaced %d index files\n",
					res.PacksRead, res.PacksDamaged, res.PacksMissing, res.BlobsSalvaged, res.PacksWritten, res.BlobsLost, res.IndexFiles)
			}
			lostDir := false
			for _, a := range res.Affected {
				fmt.Fprintf(w, "snapshot %s has files with lost data:\n", a.Snapshot[:8])
				for _, p := range a.Paths {
					if strings.HasSuffix(p, "/") {
						lostDir = true
						fmt.Fprintf(w, "  %s (directory listing lost: nothing below it restores)\n", quoteName(p))
						continue
					}
					fmt.Fprintf(w, "  %s\n", quoteName(p))
				}
			}
			if len(res.Affected) > 0 {
				fmt.Fprintln(w, "back up these paths again: a snapshot's file restores in full once a backup stores its content anew")
			}
			if lostDir {
				fmt.Fprintln(w, "a lost directory listing comes back only from a backup of the same directory, unchanged (entries and metadata)")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "only show what would be dropped")
	return cmd
}

func (f *backupFlags) breakLockCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "break-lock",
		Short: "Remove stale locks (of dead processes or not refreshed for 30 minutes), or all with --all",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			removed, err := r.BreakLocks(cmd.Context(), all)
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, removed)
			}
			for _, l := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed lock %s: %s\n", l.ID[:8], l.Lock)
			}
			if len(removed) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no locks removed")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove live locks too (only when no other process uses the repository)")
	return cmd
}

func (f *backupFlags) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show repository size and counts",
		Args:  cobra.NoArgs,
		RunE: f.withRepo(func(cmd *cobra.Command, _ []string, r *backup.Repository) error {
			st, err := r.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if f.g.json {
				return printJSON(cmd, st)
			}
			w := table(cmd)
			fmt.Fprintf(w, "location\t%s\nsnapshots\t%d\npacks\t%d (%s)\nblobs\t%d\nindex files\t%d\nsize on disk\t%s\ncompression\t%s\n",
				st.Location, st.Snapshots, st.Packs, humanBytes(st.PackBytes), st.Blobs, st.IndexFiles, humanBytes(st.SizeOnDisk), compressionName(st.Compression))
			return w.Flush()
		}),
	}
}

// progress shows a bar on a terminal, JSON lines with --json, and
// nothing otherwise; warnings always go to stderr.
type progress struct {
	cmd  *cobra.Command
	json bool
	kind string
	mu   sync.Mutex
	bar  *progressbar.ProgressBar
}

func newProgress(cmd *cobra.Command, jsonOut bool, kind string) *progress {
	p := &progress{cmd: cmd, json: jsonOut, kind: kind}
	if !jsonOut && term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription(kind),
		)
	}
	return p
}

// shown reports whether progress is printed at all: a bar on a terminal,
// or lines with --json.
func (p *progress) shown() bool { return p.json || p.bar != nil }

func (p *progress) update(pr backup.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.json:
		_ = printJSONLine(p.cmd.OutOrStdout(), map[string]any{"progress": p.kind, "state": pr})
	case p.bar != nil:
		if pr.BytesTotal > 0 {
			p.bar.ChangeMax64(pr.BytesTotal)
		}
		p.bar.Describe(fmt.Sprintf("%s %d/%d files", p.kind, pr.FilesDone, pr.FilesTotal))
		_ = p.bar.Set64(pr.BytesDone)
	}
}

func (p *progress) warn(path string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	if p.json {
		_ = printJSONLine(p.cmd.OutOrStdout(), map[string]any{"warning": err.Error(), "path": path})
		return
	}
	fmt.Fprintf(p.cmd.ErrOrStderr(), "warning: %s: %v\n", quoteName(path), err)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func printJSONLine(w io.Writer, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// cliLogger prints the engine's warnings (stale locks broken, damaged
// index files) to stderr.
func cliLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
