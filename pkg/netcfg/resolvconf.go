package netcfg

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
)

// Caps on what is read back: a resolv.conf is a few lines (glibc reads at
// most a handful of nameservers and search domains), and the saved copy
// is that content in JSON.
const (
	resolvConfLimit      = 1 << 20
	savedResolvConfLimit = 4 << 20
)

// resolvConf points a resolv.conf file at the resolver and puts the
// original back. The original (its content, or the target of a symlink)
// is saved in the state dir before anything is written, so a hostd that
// was killed restores it at its next start.
type resolvConf struct {
	path  string // the managed file, e.g. /etc/resolv.conf
	saved string // state file holding the original
}

// savedResolvConf is the original file as kept in the state dir.
type savedResolvConf struct {
	Path    string      `json:"path"`
	Missing bool        `json:"missing,omitempty"` // there was no file
	Symlink string      `json:"symlink,omitempty"` // it was a symlink to this
	Content []byte      `json:"content,omitempty"` // else its content
	Mode    fs.FileMode `json:"mode,omitempty"`
}

func newResolvConf(path, stateDir string) *resolvConf {
	return &resolvConf{path: path, saved: filepath.Join(stateDir, "resolv.conf.orig.json")}
}

// apply saves the original (unless a saved one from an earlier run is
// still there) and writes a file naming nameserver.
func (r *resolvConf) apply(nameserver string) error {
	orig, err := r.loadSaved()
	if err != nil {
		return err
	}
	if orig == nil {
		orig, err = r.capture()
		if err != nil {
			return err
		}
		b, err := json.Marshal(orig)
		if err != nil {
			return fmt.Errorf("encode original %s: %w", r.path, err)
		}
		if err := atomicfile.WriteFile(r.saved, b, 0o600); err != nil {
			return fmt.Errorf("save original %s: %w", r.path, err)
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by hostd (netcfg.dns.manage_resolv_conf) while it runs;\n")
	buf.WriteString("# the previous file is put back when hostd stops.\n")
	fmt.Fprintf(&buf, "nameserver %s\n", nameserver)
	buf.WriteString("options edns0 trust-ad\n")
	if s := searchLine(orig.Content); s != "" {
		buf.WriteString(s + "\n")
	}
	// A symlink (to systemd-resolved's stub file, say) is replaced by a
	// file: rename over the link, never write through it.
	if err := atomicfile.WriteFile(r.path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	return nil
}

// restore puts the saved original back and forgets it. Without a saved
// original it does nothing.
func (r *resolvConf) restore() error {
	orig, err := r.loadSaved()
	if err != nil || orig == nil {
		return err
	}
	switch {
	case orig.Missing:
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", r.path, err)
		}
	case orig.Symlink != "":
		tmp := r.path + ".hostd-tmp"
		os.Remove(tmp)
		if err := os.Symlink(orig.Symlink, tmp); err != nil {
			return fmt.Errorf("restore symlink %s: %w", r.path, err)
		}
		if err := os.Rename(tmp, r.path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("restore symlink %s: %w", r.path, err)
		}
		_ = atomicfile.SyncDir(filepath.Dir(r.path))
	default:
		if err := atomicfile.WriteFile(r.path, orig.Content, orig.Mode.Perm()); err != nil {
			return fmt.Errorf("restore %s: %w", r.path, err)
		}
	}
	if err := os.Remove(r.saved); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove saved original %s: %w", r.saved, err)
	}
	return nil
}

func (r *resolvConf) loadSaved() (*savedResolvConf, error) {
	b, err := safefile.Read(r.saved, savedResolvConfLimit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved original of %s: %w", r.path, err)
	}
	var s savedResolvConf
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("saved original of %s in %s is damaged: %w", r.path, r.saved, err)
	}
	if s.Path != r.path {
		return nil, fmt.Errorf("saved original in %s belongs to %s, not %s: restore it by hand and remove it", r.saved, s.Path, r.path)
	}
	return &s, nil
}

func (r *resolvConf) capture() (*savedResolvConf, error) {
	s := &savedResolvConf{Path: r.path}
	fi, err := os.Lstat(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.Missing = true
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("stat %s: %w", r.path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		if s.Symlink, err = os.Readlink(r.path); err != nil {
			return nil, fmt.Errorf("read symlink %s: %w", r.path, err)
		}
		// Keep the content too, for its search line.
		s.Content, _ = safefile.Read(r.path, resolvConfLimit)
		return s, nil
	}
	if s.Content, err = safefile.Read(r.path, resolvConfLimit); err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	s.Mode = fi.Mode().Perm()
	return s, nil
}

// searchLine returns the last search (or domain) line of a resolv.conf.
func searchLine(content []byte) string {
	line := ""
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && (f[0] == "search" || f[0] == "domain") {
			line = "search " + strings.Join(f[1:], " ")
		}
	}
	return line
}
