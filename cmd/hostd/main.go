package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/internal/api"
	"github.com/hostd/hostd/internal/config"

	// Maps only the pages of the executable that hostd runs, from before
	// the other packages' initialisers on (internal/faultaround).
	_ "github.com/hostd/hostd/internal/faultaround"
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
	// daemon is set by `hostd run`, which handles SIGTERM itself.
	daemon atomic.Bool
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
	root, _ := newRoot()
	return root
}

// newRoot builds the command tree and returns it with the flags it shares.
func newRoot() (*cobra.Command, *globals) {
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
		newAlertsCmd(g),
		newProxyCmd(g),
		newContainersCmd(g),
		newAudioCmd(g),
		newNetCmd(g),
		newDNSCmd(g),
		newGenManCmd(),
	)
	rejectUnknownSubcommands(root)
	wireUsageErrors(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if g.json && noJSON[cmd.CommandPath()] {
			return usageError(cmd, fmt.Errorf("%s has no JSON output; leave out --json", cmd.CommandPath()))
		}
		return nil
	}
	return root, g
}

// noJSON names the verbs that print something other than a report (a
// daemon's log, a YAML file, a file's bytes) and so refuse --json; every
// other verb honours it.
var noJSON = map[string]bool{
	"hostd run":            true,
	"hostd config example": true,
	"hostd backup dump":    true,
}

// usageError marks err as a usage error of cmd: exit status 2, as for an
// unknown flag.
func usageError(cmd *cobra.Command, err error) error {
	return &exitError{code: 2, err: fmt.Errorf("%w\nRun '%s --help' for usage", err, cmd.CommandPath())}
}

// wireUsageErrors makes every usage error of every verb exit with status
// 2: unknown flags, bad flag values, wrong argument counts and unknown
// subcommands.
func wireUsageErrors(c *cobra.Command) {
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(cmd, err) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					var ee *exitError
					if errors.As(err, &ee) {
						return err
					}
					return usageError(cmd, err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(c)
}

// rejectUnknownSubcommands makes the root and every command group
// (hostd backup, hostd backup key, ...) fail on an unknown subcommand
// with a usage error: cobra would print the group's help and exit 0.
func rejectUnknownSubcommands(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(cmd, fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
}

// signalGrace is how long a CLI verb has to end after SIGTERM or SIGINT
// cancelled its context before hostd exits anyway. `hostd run` is not
// cut short: the daemon stops itself within hostd.shutdown_timeout.
const signalGrace = 5 * time.Second

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, g := newRoot()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var caught atomic.Int32
	go func() {
		s := <-sigs
		caught.Store(int32(s.(syscall.Signal)))
		cancel()
		if g.daemon.Load() {
			return // the daemon has its own handler and deadline
		}
		// A second signal, or the grace period, ends the verb for good.
		signal.Stop(sigs)
		t := time.NewTimer(signalGrace)
		select {
		case <-t.C:
		case <-sigs:
		}
		fmt.Fprintf(os.Stderr, "hostd: %s: stopped\n", s)
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
	err := root.ExecuteContext(ctx)
	if n := caught.Load(); n != 0 && !g.daemon.Load() {
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostd:", err)
		}
		os.Exit(128 + int(n))
	}
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
