package dhcp

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestParseClasslessRoutes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string // "to via"
		err  bool
	}{
		{"default", []byte{0, 10, 0, 0, 1}, []string{"0.0.0.0/0 10.0.0.1"}, false},
		{"two", []byte{24, 192, 168, 50, 10, 0, 0, 254, 12, 172, 16, 0, 0, 0, 0}, []string{"192.168.50.0/24 10.0.0.254", "172.16.0.0/12 invalid IP"}, false},
		{"host route", []byte{32, 1, 2, 3, 4, 10, 0, 0, 1}, []string{"1.2.3.4/32 10.0.0.1"}, false},
		{"width 33", []byte{33, 1, 2, 3, 4, 5, 10, 0, 0, 1}, nil, true},
		{"truncated", []byte{24, 192, 168, 50, 10, 0}, nil, true},
		{"host bits", []byte{8, 10, 1, 0, 0, 1}, nil, false},
		{"host bits set", []byte{7, 11, 10, 0, 0, 1}, nil, true},
		{"multicast router", []byte{0, 224, 0, 0, 1}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClasslessRoutes(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if tt.want == nil {
				return
			}
			var s []string
			for _, r := range got {
				s = append(s, r.To.String()+" "+r.Via.String())
			}
			if !slices.Equal(s, tt.want) {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

func TestParseSearchList(t *testing.T) {
	// RFC 3397's example: eng.apple.com. and marketing.apple.com. with a
	// pointer to "apple.com".
	ok := []byte{3, 'e', 'n', 'g', 5, 'a', 'p', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 9, 'm', 'a', 'r', 'k', 'e', 't', 'i', 'n', 'g', 0xc0, 4}
	tests := []struct {
		name string
		in   []byte
		want []string
		err  bool
	}{
		{"rfc example", ok, []string{"eng.apple.com", "marketing.apple.com"}, false},
		{"loop", []byte{0xc0, 0}, nil, true},
		{"forward pointer", []byte{0xc0, 2, 0}, nil, true},
		{"past end", []byte{5, 'a', 'b'}, nil, true},
		{"bad label", []byte{3, 'a', ' ', 'b', 0}, nil, true},
		{"root only", []byte{0}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSearchList(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// ack builds an ACK with the given options over a sane base.
func ack(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(10, 0, 0, 5)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))),
		dhcpv4.WithLeaseTime(3600),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 0, 0, 1))),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.OpCode = dhcpv4.OpcodeBootReply
	return m
}

func TestParseLease(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := ParseLease(ack(t), now)
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "10.0.0.5/24" || l.Gateway.String() != "10.0.0.1" || l.T1 != 30*time.Minute || l.T2 != 3150*time.Second {
		t.Errorf("lease %+v", l)
	}
	if !l.Expires().Equal(now.Add(time.Hour)) {
		t.Errorf("expires %s", l.Expires())
	}
	bad := []struct {
		name string
		mod  dhcpv4.Modifier
	}{
		{"no lease time", dhcpv4.WithoutOption(dhcpv4.OptionIPAddressLeaseTime)},
		{"no server id", dhcpv4.WithoutOption(dhcpv4.OptionServerIdentifier)},
		{"broadcast address", dhcpv4.WithYourIP(net.IPv4bcast)},
		{"zero address", dhcpv4.WithYourIP(net.IPv4zero)},
		{"holey mask", dhcpv4.WithNetmask(net.IPMask{255, 0, 255, 0})},
		{"offer", dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)},
	}
	for _, b := range bad {
		if _, err := ParseLease(ack(t, b.mod), now); err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
	// Out-of-order T1/T2 fall back to the defaults; a tiny lease is raised.
	l, err = ParseLease(ack(t, dhcpv4.WithLeaseTime(2), dhcpv4.WithGeneric(dhcpv4.OptionRenewTimeValue, []byte{0, 0, 1, 0})), now)
	if err != nil {
		t.Fatal(err)
	}
	if l.LeaseTime != MinLeaseTime || l.T1 >= l.T2 || l.T2 >= l.LeaseTime {
		t.Errorf("times %s %s %s", l.T1, l.T2, l.LeaseTime)
	}
}

// FuzzParseLease feeds arbitrary packets to the library's decoder and
// hostd's checks; whatever is accepted must satisfy the lease file's
// checks too (a lease hostd takes is one it can store and load).
func FuzzParseLease(f *testing.F) {
	f.Add(ack(f).ToBytes())
	f.Add(ack(f, dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{24, 192, 168, 50, 10, 0, 0, 254, 0, 10, 0, 0, 1})).ToBytes())
	f.Add(ack(f, dhcpv4.WithGeneric(dhcpv4.OptionDNSDomainSearchList, []byte{3, 'l', 'a', 'n', 0, 1, 'x', 0xc0, 0})).ToBytes())
	f.Add(ack(f, dhcpv4.WithGeneric(dhcpv4.OptionDNSDomainSearchList, []byte{0xc0, 0})).ToBytes())
	f.Add(ack(f, dhcpv4.WithGeneric(dhcpv4.OptionClasslessStaticRoute, []byte{33, 1, 2, 3, 4, 5})).ToBytes())
	f.Add(ack(f, dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0, 1})).ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxPacketSize {
			return
		}
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		for _, raw := range [][]byte{m.Options.Get(dhcpv4.OptionClasslessStaticRoute), m.Options.Get(dhcpv4.OptionDNSDomainSearchList), b} {
			if rs, err := ParseClasslessRoutes(raw); err == nil && len(rs) > MaxRoutes {
				t.Fatalf("%d routes", len(rs))
			}
			if ns, err := ParseSearchList(raw); err == nil {
				if len(ns) > MaxSearchDomains {
					t.Fatalf("%d names", len(ns))
				}
				for _, n := range ns {
					if len(n) > MaxNameLen || cleanName(n) != n {
						t.Fatalf("name %q", n)
					}
				}
			}
		}
		l, err := ParseLease(m, time.Unix(1e9, 0))
		if err != nil {
			return
		}
		s := storedLease{Version: 1, Link: "eth0", Lease: l}
		if l.LeaseTime < InfiniteLease {
			if err := s.check("eth0"); err != nil {
				t.Fatalf("accepted lease fails the file check: %v (%+v)", err, l)
			}
		}
	})
}
