package service

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"gopkg.in/yaml.v3"
)

// ByteSize is a size in bytes as written in the config: a plain number of
// bytes ("1048576") or a number with a unit ("512MiB", "1.5 GB", "40g").
// Units are k, m, g, t and p, in either case, with an optional "b" or
// "ib"; all are powers of 1024, whether written KB or KiB, as Docker and
// Prometheus' --storage.tsdb.retention.size read them. Negative sizes are
// rejected.
//
// Parsing is github.com/docker/go-units' RAMInBytes: the parser Docker and
// Kubernetes use, a tagged release, and the one that takes the forms users
// write ("1.5 GB", "512mb") rather than only "512MiB".
type ByteSize int64

// ParseByteSize parses a size written as in the config.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	n, err := units.RAMInBytes(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with a unit such as 512MiB or 1.5GB", s)
	}
	return ByteSize(n), nil
}

// Bytes returns the size as a number of bytes.
func (b ByteSize) Bytes() int64 { return int64(b) }

// binaryUnits are the units String writes, largest first.
const binaryUnits = "PTGMK"

// String writes the size exactly, in the largest unit that divides it
// ("512MiB", "1536MiB", "1000"), so that it parses back to the same size.
// FormatBytes is the rounded form for people.
func (b ByteSize) String() string {
	n := int64(b)
	if n <= 0 {
		return strconv.FormatInt(n, 10)
	}
	for i, u := range binaryUnits {
		size := int64(1) << (10 * (len(binaryUnits) - i))
		if n%size == 0 {
			return strconv.FormatInt(n/size, 10) + string(u) + "iB"
		}
	}
	return strconv.FormatInt(n, 10)
}

// UnmarshalConfig implements confkit.Unmarshaler.
func (b *ByteSize) UnmarshalConfig(n *yaml.Node) error { return b.UnmarshalYAML(n) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size such as 512MiB")
	}
	return b.UnmarshalText([]byte(n.Value))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalJSON takes a JSON number of bytes or a string as in the config.
// A JSON null leaves b as it is.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		return b.UnmarshalText([]byte(s))
	}
	return b.UnmarshalText(data)
}

// MarshalText implements encoding.TextMarshaler with String.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// FormatBytes formats a byte count for people, in binary units with one
// decimal: "512 B", "1.5 KiB", "3.0 GiB". It is what the CLI prints.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
