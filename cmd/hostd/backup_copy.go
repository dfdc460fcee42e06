package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup"
)

// copyFlags are the destination repository's options of copy.
type copyFlags struct {
	to           string
	passwordFile string
	passwordCmd  string
	filter       backup.SnapshotFilter
}

func (f *backupFlags) copyCmd() *cobra.Command {
	var o copyFlags
	cmd := &cobra.Command{
		Use:   "copy --to REPOSITORY [SNAPSHOT...]",
		Short: "Copy snapshots and the data they need into another repository (local to S3, say)",
		Long: `Copy the snapshots named (ID prefixes or "latest"), else every snapshot the
--host, --path and --tag filters select, from --repo into the repository --to,
with every tree and data blob the destination does not hold yet. Each blob is
read and authenticated with the source's key and stored with the
destination's, so the two repositories keep their own passphrases. A snapshot
the destination already holds (same time, host, paths and tags) is skipped: a
copy run again adds nothing.

The destination must exist (hostd backup init --repo DST). Its passphrase
comes from --to-password-file ($HOSTD_BACKUP_TO_PASSWORD_FILE),
--to-password-command ($HOSTD_BACKUP_TO_PASSWORD_COMMAND),
$HOSTD_BACKUP_TO_PASSWORD, or a prompt on a terminal. The backend flags
(--s3-access-key, --limit-upload, ...) apply to both repositories.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.to == "" {
				return usageError(cmd, errors.New("--to is required: the destination repository"))
			}
			if len(args) > 0 && (len(o.filter.Hosts) > 0 || len(o.filter.Paths) > 0 || len(o.filter.Tags) > 0) {
				return usageError(cmd, errors.New("give snapshot IDs or --host/--path/--tag filters, not both"))
			}
			if o.passwordFile != "" && o.passwordCmd != "" {
				return usageError(cmd, errors.New("give --to-password-file or --to-password-command, not both"))
			}
			dpw, err := o.password(cmd)
			if err != nil {
				return err
			}
			dst, err := backup.Open(cmd.Context(), o.to, dpw, backup.OpenOptions{Backend: f.backendOptions(), CacheDir: f.cacheDir, NoCache: f.noCache, Logger: cliLogger(cmd)})
			clear(dpw)
			if errors.Is(err, backup.ErrNotRepository) {
				return fmt.Errorf("destination: %w\nhint: create it with: hostd backup init --repo %s", err, o.to)
			}
			if err != nil {
				return fmt.Errorf("destination: %w", err)
			}
			defer dst.Close()
			src, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer src.Close()
			res, err := src.Copy(cmd.Context(), dst, backup.CopyOptions{Snapshots: args, Filter: o.filter})
			if res != nil {
				if f.g.json {
					if perr := printJSON(cmd, res); perr != nil && err == nil {
						err = perr
					}
				} else {
					printCopyResult(cmd.OutOrStdout(), res, o.to)
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.to, "to", os.Getenv("HOSTD_BACKUP_TO_REPOSITORY"), "destination repository, any form --repo takes ($HOSTD_BACKUP_TO_REPOSITORY)")
	fl.StringVar(&o.passwordFile, "to-password-file", os.Getenv("HOSTD_BACKUP_TO_PASSWORD_FILE"), "read the destination's passphrase from this file ($HOSTD_BACKUP_TO_PASSWORD_FILE)")
	fl.StringVar(&o.passwordCmd, "to-password-command", os.Getenv("HOSTD_BACKUP_TO_PASSWORD_COMMAND"), "run this shell command and read the destination's passphrase from its output ($HOSTD_BACKUP_TO_PASSWORD_COMMAND; 60 s deadline)")
	addFilterFlags(fl, &o.filter)
	return cmd
}

// password reads the destination's passphrase, with the caps and checks
// of the source's.
func (o *copyFlags) password(cmd *cobra.Command) ([]byte, error) {
	if o.passwordCmd != "" {
		return runPasswordCommand(cmd.Context(), o.passwordCmd, cmd.ErrOrStderr(), passwordCommandTimeout)
	}
	if o.passwordFile != "" {
		b, err := safefile.Read(o.passwordFile, safefile.SecretLimit)
		if err != nil {
			return nil, fmt.Errorf("read destination password file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("destination password file %s is empty", o.passwordFile)
		}
		return b, nil
	}
	if p := os.Getenv("HOSTD_BACKUP_TO_PASSWORD"); p != "" {
		if len(p) > safefile.SecretLimit {
			return nil, fmt.Errorf("$HOSTD_BACKUP_TO_PASSWORD: longer than %d bytes", safefile.SecretLimit)
		}
		return []byte(p), nil
	}
	return promptPassword(cmd, "destination repository passphrase", "--to-password-file, --to-password-command or set HOSTD_BACKUP_TO_PASSWORD", false)
}

func printCopyResult(w io.Writer, res *backup.CopyResult, to string) {
	for _, c := range res.Copied {
		fmt.Fprintf(w, "copied %s as %s\n", shortID(c.Source), shortID(c.Destination))
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: already in the destination\n", shortID(s))
	}
	fmt.Fprintf(w, "%d snapshots copied to %s, %d skipped; %d blobs, %s added\n",
		len(res.Copied), to, len(res.Skipped), res.BlobsAdded, service.FormatBytes(res.BytesAdded))
}
