package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/pkg/backup"
)

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
	remove := &cobra.Command{
		Use:   "remove KEY",
		Short: "Remove a key (an ID prefix; not the key in use, nor the last one)",
		Args:  cobra.ExactArgs(1),
		RunE: f.withRepo(func(cmd *cobra.Command, args []string, r *backup.Repository) error {
			name, err := r.RemoveKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.printKey(cmd, "removed key", name)
		}),
	}
	cmd.PersistentFlags().StringVar(&newFile, "new-password-file", "", "read the new passphrase from this file ($HOSTD_BACKUP_NEW_PASSWORD)")
	cmd.AddCommand(add, passwd, list, remove)
	return cmd
}

func (f *backupFlags) printKey(cmd *cobra.Command, msg, name string) error {
	if f.g.json {
		return printJSON(cmd, map[string]string{"key": name})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", msg, name[:8])
	return nil
}
