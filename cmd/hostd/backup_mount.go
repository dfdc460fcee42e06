package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hostd/hostd/pkg/backup/mount"
)

// mountInfo is what mount prints once the view is ready (--json: one
// document, then nothing until it is unmounted).
type mountInfo struct {
	Mountpoint string `json:"mountpoint"`
	Snapshots  int    `json:"snapshots"`
}

func (f *backupFlags) mountCmd() *cobra.Command {
	var o mount.Options
	cmd := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Show the snapshots as a read-only file system (FUSE) until interrupted",
		Long: `Mount a read-only view of the repository at MOUNTPOINT (an existing
directory) and serve it until SIGINT or SIGTERM, then unmount:

  snapshots/ID/...       the files of each snapshot, with their modes, owners,
                         times, symlinks and extended attributes as restored
  snapshots/latest       a link to the newest
  hosts/HOST/ID, tags/TAG/ID, and latest in each: links to snapshots/ID

--host, --path and --tag select the snapshots shown; the view shows the
snapshots there are when it is mounted. File contents are read from the
repository when read. A shared lock is held while mounted, so prune waits.
Unmount from elsewhere with: fusermount3 -u MOUNTPOINT.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mp := args[0]
			if fi, err := os.Stat(mp); err != nil || !fi.IsDir() {
				return usageError(cmd, fmt.Errorf("mount: %s is not a directory", mp))
			}
			r, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer r.Close()
			ctx := cmd.Context()
			lock, err := r.Internal().Lock(ctx, false)
			if err != nil {
				return fmt.Errorf("mount: %w", err)
			}
			defer lock.Unlock()
			o.Logger = cliLogger(cmd)
			m, err := mount.Mount(ctx, r.Internal(), mp, o)
			if err != nil {
				return err
			}
			if f.g.json {
				if err := printJSON(cmd, mountInfo{Mountpoint: mp, Snapshots: m.Snapshots}); err != nil {
					_ = m.Unmount()
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "mounted %d snapshots at %s; Ctrl-C unmounts\n", m.Snapshots, mp)
			}
			unmounted := make(chan struct{})
			go func() {
				m.Wait()
				close(unmounted)
			}()
			select {
			case <-unmounted: // fusermount -u from elsewhere
				return nil
			case <-ctx.Done():
			}
			if err := m.Unmount(); err != nil {
				return fmt.Errorf("unmount %s: %w (a process still uses it; unmount with fusermount3 -u %s)", mp, err, mp)
			}
			<-unmounted
			return nil
		},
	}
	fl := cmd.Flags()
	addFilterFlags(fl, &o.Filter)
	fl.BoolVar(&o.AllowOther, "allow-other", false, "let other users read the view (needs user_allow_other in /etc/fuse.conf unless root)")
	fl.IntVar(&o.BlobCacheBytes, "cache-bytes", mount.DefaultBlobCacheBytes, "bytes of decoded data segments to keep in memory")
	return cmd
}
