package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError carries a process exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every verb shares.
type globals struct {
	socket     string
	json       bool
	configFile string
}

// client returns a local API client for the daemon's socket.
func (g *globals) client() *api.Client {
	return api.NewClient(g.socketPath())
}

// socketPath is --socket, else the socket named in --config, else the
// default for this user.
func (g *globals) socketPath() string {
	if g.socket != "" {
		return g.socket
	}
	if g.configFile != "" {
		if cfg, err := config.Load(g.configFile, sectionsOf(registrations()), os.Getenv); err == nil {
			return cfg.Core.Socket
		}
	}
	return config.DefaultSocket(os.Getenv)
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "hostd",
		Short:         "One supervised daemon for a host's proxy, backups, metrics, audio, network and containers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "local API socket (default: from --config, else $XDG_RUNTIME_DIR/hostd.sock or /run/hostd/hostd.sock)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON for scripts")
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", os.Getenv("HOSTD_CONFIG"), "config file ($HOSTD_CONFIG)")
	backup := newBackupCmd(g)
	addBackupJobCmds(backup, g)
	root.AddCommand(
		newRunCmd(g),
		newStatusCmd(g),
		newConfigCmd(g),
		newVersionCmd(g),
		backup,
		newMetricsCmd(g),
		newProxyCmd(g),
		newContainersCmd(g),
		newAudioCmd(g),
		newNetCmd(g),
		newDNSCmd(g),
	)
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command group below the root
// (hostd backup, hostd backup key, ...) fail on an unknown subcommand,
// as the root does: cobra would print the group's help and exit 0.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if sub.HasSubCommands() && !sub.Runnable() {
			sub.Args = cobra.ArbitraryArgs
			sub.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unknown command %q for %q\nRun '%s --help' for usage", args[0], cmd.CommandPath(), cmd.CommandPath())
				}
				return cmd.Help()
			}
		}
		rejectUnknownSubcommands(sub)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "hostd:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "hostd:", err)
	if errors.Is(err, api.ErrNotRunning) {
		os.Exit(3)
	}
	os.Exit(1)
}
