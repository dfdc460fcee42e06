package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/pkg/backup"
)

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
