package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/configs"
	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/internal/daemon"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check, show and print example configs"}
	var skipSecrets bool
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a config file; print every problem as file:line:col: key: message",
		Long: `Check a config file: syntax, types, values, listener clashes, schedules,
and that every secret reference of an enabled service resolves (the file
exists, the SOPS file decrypts with the age key and has the key). Every
problem is printed as file:line:col: key: message.

Exit status: 0 when the file is good, 1 with problems.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := g.configFile
			if len(args) == 1 {
				file = args[0]
			}
			if file == "" {
				return &exitError{code: 2, err: errors.New("config check: name a FILE or pass --config")}
			}
			cfg, err := daemon.LoadConfig(file, registrations(), os.Getenv)
			var errs confkit.Errors
			if err == nil && !skipSecrets {
				if serrs := cfg.CheckSecrets(cmd.Context(), os.Getenv); len(serrs) > 0 {
					err = serrs
				}
			}
			if errors.As(err, &errs) {
				if g.json {
					_ = printJSON(cmd, map[string]any{"file": file, "ok": false, "errors": errs})
				} else {
					for _, e := range errs {
						fmt.Fprintln(cmd.OutOrStdout(), e.Error())
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %d problem(s)\n", file, len(errs))
				}
				return &exitError{code: 1}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if g.json {
				return printJSON(cmd, map[string]any{"file": file, "ok": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", file)
			return nil
		},
	}
	check.Flags().BoolVar(&skipSecrets, "no-secrets", false, "do not resolve secret references (for checking on another machine)")
	cmd.AddCommand(check)
	var local bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective config (defaults filled in, secrets redacted)",
		Long: `Print the effective config with defaults filled in and every secret
redacted. It asks the running daemon; with --local (or when no daemon
runs) it loads --config, or the embedded defaults, itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !local {
				b, err := g.client().Raw(cmd.Context(), "GET", "/v1/config", nil)
				if err == nil {
					_, err = cmd.OutOrStdout().Write(b)
					return err
				}
				if !errors.Is(err, api.ErrNotRunning) {
					return err
				}
			}
			cfg, err := daemon.LoadConfig(g.configFile, registrations(), os.Getenv)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			b, err := cfg.Show()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	show.Flags().BoolVar(&local, "local", false, "load the config here instead of asking the daemon")
	cmd.AddCommand(show)
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print an example config with every option and its default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(configs.Example)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "reload",
		Short: "Ask the daemon to re-read its config (as SIGHUP does)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.ConfigReload
			err := g.client().Post(cmd.Context(), "/v1/config/reload", nil, &res)
			var he *api.HTTPError
			if errors.As(err, &he) && len(he.Body) > 0 {
				_ = jsonUnmarshal(he.Body, &res)
			} else if err != nil {
				return err
			}
			if g.json {
				_ = printJSON(cmd, res)
			} else if len(res.Errors) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "config rejected; the running config is kept:")
				for _, e := range res.Errors {
					fmt.Fprintln(cmd.OutOrStdout(), "  "+e)
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "config reloaded; restarted: %v\n", res.Restarted)
			}
			if len(res.Errors) > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	})
	return cmd
}
