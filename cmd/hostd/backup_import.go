package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hostd/hostd/internal/safefile"
	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup/importer"
	"github.com/hostd/hostd/pkg/backup/importer/restic"
)

// importSources opens a foreign repository by the scheme of its
// location: "restic:PATH" today; borg's would be another entry.
var importSources = map[string]func(ctx context.Context, where string, password []byte, warn func(string, error)) (importer.Source, error){
	"restic": func(ctx context.Context, where string, password []byte, warn func(string, error)) (importer.Source, error) {
		return restic.Open(ctx, where, password, restic.Options{Warn: warn})
	},
}

// parseImportSource splits "restic:PATH" (or "restic://PATH") into its
// scheme and path.
func parseImportSource(s string) (scheme, where string, err error) {
	scheme, where, ok := strings.Cut(s, ":")
	if _, known := importSources[scheme]; !ok || !known {
		return "", "", fmt.Errorf("import source %q: want restic:PATH", s)
	}
	where = strings.TrimPrefix(where, "//")
	if where == "" {
		return "", "", fmt.Errorf("import source %q: no path", s)
	}
	return scheme, filepath.Clean(where), nil
}

// importFlags are the source repository's passphrase options.
type importFlags struct {
	passwordFile string
	passwordCmd  string
	snapshots    []string
}

func (f *backupFlags) importCmd() *cobra.Command {
	var o importFlags
	cmd := &cobra.Command{
		Use:   "import restic:PATH",
		Short: "Import every snapshot of a restic repository as hostd snapshots",
		Long: `Read the snapshots of a restic repository (local, format version 1 or 2)
and write each as a hostd snapshot with its time, host, user, paths, tags and
file metadata. Contents are re-cut by this repository's chunker and stored
deduplicated, as a backup stores them. Snapshots already imported (same time,
host, paths and tags) are skipped, so an import can be run again.

The restic password comes from --source-password-file ($RESTIC_PASSWORD_FILE),
--source-password-command ($RESTIC_PASSWORD_COMMAND), $RESTIC_PASSWORD, or a
prompt on a terminal. Exit status 3: some snapshots could not be imported
(named on stderr).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scheme, where, err := parseImportSource(args[0])
			if err != nil {
				return usageError(cmd, err)
			}
			spw, err := o.password(cmd)
			if err != nil {
				return err
			}
			warn := func(what string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %v\n", what, err) }
			src, err := importSources[scheme](cmd.Context(), where, spw, warn)
			if err != nil {
				return err
			}
			defer src.Close()
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			limitHeap(96<<20, 50)
			opts := importer.Options{Snapshots: o.snapshots, Warn: func(id string, err error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "snapshot %s: %v\n", id, err)
			}}
			if !f.g.json && term.IsTerminal(int(os.Stderr.Fd())) {
				opts.Progress = func(p importer.Progress) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\rimport: %d/%d snapshots, %d files, %s read, %s added ",
						p.SnapshotsDone, p.SnapshotsTotal, p.Files, service.FormatBytes(p.BytesRead), service.FormatBytes(p.BytesAdded))
				}
			}
			res, err := importer.Import(cmd.Context(), r, src, opts)
			if opts.Progress != nil {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if res == nil {
				return err
			}
			if f.g.json {
				if perr := printJSON(cmd, res); perr != nil {
					return perr
				}
			} else {
				printImportResult(cmd.OutOrStdout(), res)
			}
			if errors.Is(err, importer.ErrPartial) {
				return &exitError{code: 3, err: err}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.passwordFile, "source-password-file", os.Getenv("RESTIC_PASSWORD_FILE"), "read the source repository's password from this file ($RESTIC_PASSWORD_FILE)")
	fl.StringVar(&o.passwordCmd, "source-password-command", os.Getenv("RESTIC_PASSWORD_COMMAND"), "run this shell command and read the source password from its output ($RESTIC_PASSWORD_COMMAND; 60 s deadline)")
	fl.StringArrayVar(&o.snapshots, "snapshot", nil, "import only this source snapshot (ID prefix; repeatable)")
	return cmd
}

// password reads the source repository's password, with the caps and
// checks of hostd's own.
func (o *importFlags) password(cmd *cobra.Command) ([]byte, error) {
	if o.passwordFile != "" && o.passwordCmd != "" {
		return nil, usageError(cmd, errors.New("give --source-password-file or --source-password-command, not both"))
	}
	if o.passwordCmd != "" {
		return runPasswordCommand(cmd.Context(), o.passwordCmd, cmd.ErrOrStderr(), passwordCommandTimeout)
	}
	if o.passwordFile != "" {
		b, err := safefile.Read(o.passwordFile, safefile.SecretLimit)
		if err != nil {
			return nil, fmt.Errorf("read source password file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("source password file %s is empty", o.passwordFile)
		}
		return b, nil
	}
	if p := os.Getenv("RESTIC_PASSWORD"); p != "" {
		if len(p) > safefile.SecretLimit {
			return nil, fmt.Errorf("$RESTIC_PASSWORD: longer than %d bytes", safefile.SecretLimit)
		}
		return []byte(p), nil
	}
	return promptPassword(cmd, "source repository password", "--source-password-file, --source-password-command or set RESTIC_PASSWORD", false)
}

func printImportResult(w io.Writer, res *importer.Result) {
	for _, s := range res.Imported {
		fmt.Fprintf(w, "imported %s (%s) as %s\n", shortID(s.Source), s.Time.Format(time.DateTime), shortID(s.ID))
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: already imported\n", shortID(s))
	}
	fmt.Fprintf(w, "%d snapshots imported from %s, %d skipped; %d files, %s read, %s added (%s stored) in %s\n",
		len(res.Imported), res.Source, len(res.Skipped), res.Files, service.FormatBytes(res.BytesRead),
		service.FormatBytes(res.BytesAdded), service.FormatBytes(res.BytesStored), res.Duration.Round(time.Millisecond))
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
