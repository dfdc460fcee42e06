package resolver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/pkg/netcfg/resolver"
)

func TestParseHosts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		names   int
		wantErr []string
	}{
		{"typical", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# comment\n\n192.0.2.1 nas nas.lan # trailing\n", 4, nil},
		{"bad address", "300.1.1.1 bad\n192.0.2.1 good\n", 1, []string{"line 1", "300.1.1.1"}},
		{"address without name", "192.0.2.1\n", 0, []string{"line 1", "has no name"}},
		{"bad name", "192.0.2.1 good bad..name\n", 1, []string{"bad name"}},
		{"zone is dropped", "fe80::1%eth0 router\n", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := resolver.ParseHosts(strings.NewReader(tc.in))
			if tab.Len() != tc.names {
				t.Errorf("names = %d, want %d", tab.Len(), tc.names)
			}
			if (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHostsAnswer(t *testing.T) {
	tab, _ := resolver.ParseHosts(strings.NewReader("192.0.2.1 nas nas.lan\n2001:db8::1 nas\n"))
	tests := []struct {
		name  string
		qtype uint16
		want  []string // nil: not answered from the table
	}{
		{"nas", dns.TypeA, []string{"192.0.2.1"}},
		{"NAS", dns.TypeAAAA, []string{"2001:db8::1"}},
		{"nas.lan", dns.TypeAAAA, []string{}},
		{"nas", dns.TypeMX, []string{}},
		{"other", dns.TypeA, nil},
		{"1.2.0.192.in-addr.arpa", dns.TypePTR, []string{"nas.", "nas.lan."}},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", dns.TypePTR, []string{"nas."}},
		{"9.2.0.192.in-addr.arpa", dns.TypePTR, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.name, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			m := tab.Answer(question(tc.name, tc.qtype))
			if tc.want == nil {
				if m != nil {
					t.Fatalf("answered %v, want no answer", m.Answer)
				}
				return
			}
			if m == nil {
				t.Fatalf("no answer, want %q", tc.want)
			}
			got := []string{}
			for _, rr := range m.Answer {
				f := strings.Fields(rr.String())
				got = append(got, f[len(f)-1])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("answer = %q, want %q", got, tc.want)
			}
		})
	}
}

// A hosts file that is a FIFO (which would block the read forever) or
// larger than HostsLimit is not read: the resolver goes on without it,
// reports why, and answers from its upstreams.
func TestHostsFileUnbounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(resolver.HostsLimit + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	up := startFixedUpstream(t)
	for _, tc := range []struct{ path, want string }{
		{fifo, "not a regular file"},
		{big, "too large"},
	} {
		r, err := resolver.New(resolver.Options{Upstreams: []resolver.Upstream{{Address: up}}, HostsPath: tc.path, CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		resp, src := r.Query(context.Background(), "www.hostd.test", dns.TypeA)
		if resp.Rcode != dns.RcodeSuccess || src != resolver.SourceUpstream {
			t.Errorf("%s: rcode %s from %s, want an upstream answer", tc.path, dns.RcodeToString[resp.Rcode], src)
		}
		if e := r.Stats().HostsError; !strings.Contains(e, tc.want) || !strings.Contains(e, tc.path) {
			t.Errorf("hosts error %q, want %q naming %s", e, tc.want, tc.path)
		}
		r.Close()
	}
}
