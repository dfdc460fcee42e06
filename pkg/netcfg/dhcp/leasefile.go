package dhcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
)

// The v4 and v6 clients keep their lease in a file across restarts
// (Options.LeaseFile, Options6.LeaseFile; empty: not kept). proto names
// the client in log lines ("dhcp", "dhcpv6").

// saveLease writes stored (a storedLease or storedLease6) to file.
func saveLease(log *slog.Logger, proto, file string, stored any) {
	if file == "" {
		return
	}
	b, err := json.MarshalIndent(stored, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(file, append(b, '\n'), 0o600)
	}
	if err != nil {
		log.Warn("save "+proto+" lease", "file", file, "err", err)
	}
}

// forgetLease removes file, if there is one.
func forgetLease(log *slog.Logger, proto, file string) {
	if file == "" {
		return
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("remove "+proto+" lease file", "file", file, "err", err)
	}
}

// loadLease reads file with read (LoadLease, LoadLease6); nil when there
// is none or it is not usable.
func loadLease[L any](log *slog.Logger, proto, file, link string, read func(path, link string) (*L, error)) *L {
	if file == "" {
		return nil
	}
	l, err := read(file, link)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("stored "+proto+" lease ignored", "err", err)
		}
		return nil
	}
	return l
}

// readLeaseFile reads path, bounded, into stored.
func readLeaseFile(path string, stored any) error {
	b, err := safefile.Read(path, leaseFileLimit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, stored); err != nil {
		return fmt.Errorf("lease file %s: %w", path, err)
	}
	return nil
}
