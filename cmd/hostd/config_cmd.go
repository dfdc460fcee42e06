package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/configs"
	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"
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
				return usageError(cmd, errors.New("config check: name a FILE or pass --config"))
			}
			_, errs := config.Check(cmd.Context(), file, sectionsOf(registrations()), os.Getenv, !skipSecrets)
			if len(errs) > 0 {
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
		Use:   "show [FILE]",
		Short: "Print the effective config (defaults filled in, secrets redacted)",
		Long: `Print the effective config with defaults filled in and every secret
redacted. With FILE it loads that file, as config check does. Otherwise it
asks the running daemon; with --local (or when no daemon runs) it loads
--config, or the embedded defaults, itself. --json prints it as JSON.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := g.configFile
			if len(args) == 1 {
				file, local = args[0], true
			}
			if !local {
				path := api.RouteConfig
				if g.json {
					path += "?format=json"
				}
				b, err := g.client().Raw(cmd.Context(), "GET", path, nil)
				if err == nil {
					_, err = cmd.OutOrStdout().Write(b)
					return err
				}
				if !errors.Is(err, api.ErrNotRunning) {
					return err
				}
			}
			cfg, err := daemon.LoadConfig(file, registrations(), os.Getenv)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			show := cfg.Show
			if g.json {
				show = cfg.ShowJSON
			}
			b, err := show()
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
			err := g.client().Post(cmd.Context(), api.RouteConfigReload, nil, &res)
			var he *api.HTTPError
			switch {
			case errors.As(err, &he) && he.Code == http.StatusUnprocessableEntity:
				// A rejected config: the reply lists its problems.
				if jerr := jsonUnmarshal(he.Body, &res); jerr != nil || len(res.Errors) == 0 {
					return err
				}
			case err != nil:
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
