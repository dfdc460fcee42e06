package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/daemon"
)

func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the hostd daemon (what the systemd unit starts)",
		Long: `Run the hostd daemon in the foreground until SIGTERM or SIGINT.

With no --config it runs on embedded defaults: metrics and health on,
everything that needs outside parts or secrets off. SIGHUP re-reads the
config and restarts only the services whose section changed. A config
that does not load exits with status 2 before anything starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g.daemon.Store(true)
			err := daemon.Run(cmd.Context(), daemon.Options{
				ConfigFile:    g.configFile,
				Registrations: registrations(),
				Version:       version,
			})
			var ce *daemon.ConfigError
			if errors.As(err, &ce) {
				cmd.PrintErrln(ce.Err.Error())
				return &exitError{code: 2}
			}
			return err
		},
	}
}
