package service_test

import (
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hostd/hostd/internal/service"
)

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "512MB", want: 512 << 20}, // powers of 1024, as metrics and containers read them
		{in: "512mb", want: 512 << 20},
		{in: "512m", want: 512 << 20},
		{in: "1.5 GB", want: 3 << 29},
		{in: " 2GiB ", want: 2 << 30},
		{in: "40g", want: 40 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "100B", want: 100},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "-1", bad: true},
		{in: "-5MiB", bad: true},
		{in: "5 XB", bad: true},
		{in: "5MiBs", bad: true},
		{in: "90%", bad: true},
		{in: "1.2.3", bad: true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := service.ParseByteSize(c.in)
			switch {
			case c.bad && err == nil:
				t.Errorf("ParseByteSize(%q) = %d, want an error", c.in, got)
			case !c.bad && err != nil:
				t.Errorf("ParseByteSize(%q): %v", c.in, err)
			case !c.bad && got.Bytes() != c.want:
				t.Errorf("ParseByteSize(%q) = %d, want %d", c.in, got, c.want)
			}
		})
	}
}

func TestByteSizeStringRoundTrips(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{1000, "1000"},
		{1024, "1KiB"},
		{512 << 20, "512MiB"},
		{3 << 29, "1536MiB"},
		{2 << 30, "2GiB"},
		{5 << 40, "5TiB"},
		{3 << 50, "3PiB"},
		{1<<30 + 1, "1073741825"},
	}
	for _, c := range cases {
		b := service.ByteSize(c.n)
		if got := b.String(); got != c.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", c.n, got, c.want)
		}
		back, err := service.ParseByteSize(b.String())
		if err != nil || back != b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", b.String(), back, err, c.n)
		}
	}
}

func TestByteSizeDecodes(t *testing.T) {
	type section struct {
		Size service.ByteSize `yaml:"size" json:"size"`
	}
	cases := []struct {
		name, format, in string
		want             int64
		bad              bool
	}{
		{name: "yaml unit", format: "yaml", in: "size: 512MiB", want: 512 << 20},
		{name: "yaml number", format: "yaml", in: "size: 4096", want: 4096},
		{name: "yaml spaced", format: "yaml", in: "size: 1.5 GB", want: 3 << 29},
		{name: "yaml list", format: "yaml", in: "size: [1]", bad: true},
		{name: "yaml bad", format: "yaml", in: "size: lots", bad: true},
		{name: "json string", format: "json", in: `{"size": "2GiB"}`, want: 2 << 30},
		{name: "json number", format: "json", in: `{"size": 4096}`, want: 4096},
		{name: "json null", format: "json", in: `{"size": null}`, want: 0},
		{name: "json bad", format: "json", in: `{"size": "lots"}`, bad: true},
		{name: "json negative", format: "json", in: `{"size": -1}`, bad: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s section
			var err error
			if c.format == "yaml" {
				err = yaml.Unmarshal([]byte(c.in), &s)
			} else {
				err = json.Unmarshal([]byte(c.in), &s)
			}
			switch {
			case c.bad && err == nil:
				t.Errorf("decoded %d, want an error", s.Size)
			case !c.bad && err != nil:
				t.Errorf("decode: %v", err)
			case !c.bad && s.Size.Bytes() != c.want:
				t.Errorf("decoded %d, want %d", s.Size, c.want)
			}
		})
	}
}

func TestByteSizeEncodes(t *testing.T) {
	b, err := json.Marshal(struct {
		Size service.ByteSize `json:"size"`
	}{service.ByteSize(512 << 20)})
	if err != nil || string(b) != `{"size":"512MiB"}` {
		t.Errorf("json = %s, %v", b, err)
	}
}

// TestFormatBytes pins the CLI's output: one decimal in binary units,
// plain bytes below 1 KiB.
func TestFormatBytes(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"},
		{1 << 20, "1.0 MiB"},
		{3 << 29, "1.5 GiB"},
		{5 << 40, "5.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{1 << 62, "4.0 EiB"},
		{-5, "-5 B"},
	}
	for _, c := range cases {
		if got := service.FormatBytes(c.n); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
