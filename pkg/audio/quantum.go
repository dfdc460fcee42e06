package audio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hostd/hostd/internal/atomicfile"
	"github.com/hostd/hostd/internal/safefile"
)

// dropInName is the file hostd writes under <config_dir>/pipewire.conf.d.
const dropInName = "50-hostd.conf"

// dropIn renders the pipewire.conf.d fragment for quantum and rate, or ""
// when neither is set.
func dropIn(quantum, rate int) string {
	if quantum == 0 && rate == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("# Written by hostd from the audio section of its config (quantum, rate).\n")
	b.WriteString("# Changes here are overwritten; PipeWire reads this file when it starts.\n")
	b.WriteString("context.properties = {\n")
	if rate != 0 {
		fmt.Fprintf(&b, "    default.clock.rate = %d\n", rate)
		fmt.Fprintf(&b, "    default.clock.allowed-rates = [ %d ]\n", rate)
	}
	if quantum != 0 {
		fmt.Fprintf(&b, "    default.clock.quantum = %d\n", quantum)
		fmt.Fprintf(&b, "    default.clock.min-quantum = %d\n", min(quantum, 32))
	}
	b.WriteString("}\n")
	return b.String()
}

// dropInLimit caps the read of the existing drop-in: hostd's own is a
// few lines, and anything larger is not hostd's and is replaced.
const dropInLimit = 64 << 10

// writeDropIn makes <dir>/pipewire.conf.d/50-hostd.conf say what the config
// says, writing only when it differs, and removes it when quantum and rate
// are both unset. It reports whether the file changed.
func writeDropIn(dir string, quantum, rate int) (bool, error) {
	if dir == "" {
		return false, nil
	}
	path := filepath.Join(dir, "pipewire.conf.d", dropInName)
	want := dropIn(quantum, rate)
	have, err := safefile.Read(path, dropInLimit)
	switch {
	case err == nil && string(have) == want:
		return false, nil
	case errors.Is(err, safefile.ErrTooLarge):
		// Not hostd's: replaced (or removed) below.
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read pipewire drop-in: %w", err)
	case err != nil && want == "":
		return false, nil
	}
	if want == "" {
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("remove %s: %w", path, err)
		}
		return true, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.WriteFile(path, []byte(want), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// metadataLine matches one line of pw-metadata output, such as
//
//	update: id:0 key:'clock.quantum' value:'1024' type:''
var metadataLine = regexp.MustCompile(`^update: id:0 key:'([^']*)' value:'([^']*)'`)

// parseSettings reads the clock settings from `pw-metadata -n settings`
// output. ok is false when the output has no clock.quantum.
func parseSettings(out []byte) (q Quantum, ok bool) {
	vals := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := metadataLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		if n, err := strconv.Atoi(m[2]); err == nil {
			vals[m[1]] = n
		}
	}
	quantum, ok := vals["clock.quantum"]
	if !ok {
		return Quantum{}, false
	}
	q = Quantum{Effective: quantum, Min: vals["clock.min-quantum"], Max: vals["clock.max-quantum"], Rate: vals["clock.rate"]}
	if f := vals["clock.force-quantum"]; f > 0 {
		q.Effective = f
	}
	if f := vals["clock.force-rate"]; f > 0 {
		q.Rate = f
	}
	return q, true
}

// metadataLimit caps what is kept of pw-metadata's output.
const metadataLimit = 1 << 20

// cappedBuffer keeps the first limit bytes written to it and drops the
// rest (the writer is never told, so the child is not killed by EPIPE).
type cappedBuffer struct {
	b     bytes.Buffer
	limit int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.limit - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// readQuantum asks PipeWire for its clock settings with pw-metadata. The
// pulse protocol does not carry them. runtimeDir is where PipeWire's socket
// is (the pulse socket's grandparent directory).
//
// The run is bounded by timeout (audio.timeout), and its output by
// metadataLimit: the settings are a few dozen lines.
func readQuantum(ctx context.Context, runtimeDir string, timeout time.Duration) (*Quantum, error) {
	bin, err := exec.LookPath("pw-metadata")
	if err != nil {
		return nil, fmt.Errorf("read quantum: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "settings")
	cmd.Env = append(os.Environ(), "PIPEWIRE_RUNTIME_DIR="+runtimeDir, "XDG_RUNTIME_DIR="+runtimeDir)
	// A child that keeps the output pipe open cannot hold Wait past this.
	cmd.WaitDelay = time.Second
	out := &cappedBuffer{limit: metadataLimit}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read quantum with pw-metadata: no answer within %s (audio.timeout): %w", timeout, err)
		}
		return nil, fmt.Errorf("read quantum with pw-metadata: %w", err)
	}
	q, ok := parseSettings(out.b.Bytes())
	if !ok {
		return nil, errors.New("read quantum: pw-metadata printed no clock.quantum")
	}
	return &q, nil
}

// runtimeDirOf returns the runtime dir of a local pulse socket address
// ("unix:/run/user/1000/pulse/native" → "/run/user/1000"), or "".
func runtimeDirOf(addr string) string {
	network, p, err := dialAddress(addr)
	if err != nil || network != "unix" || filepath.Base(filepath.Dir(p)) != "pulse" {
		return ""
	}
	return filepath.Dir(filepath.Dir(p))
}
