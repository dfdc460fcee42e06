package resolver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/hostd/hostd/internal/safefile"
)

// hostsTTL is the TTL of answers made from the hosts file.
const hostsTTL = 0

// HostsLimit caps the hosts file: large enough for block lists of a few
// hundred thousand names, small enough that a runaway file cannot fill
// memory. A larger file (or one that is not a regular file) is an error,
// and the last table read stays in use.
const HostsLimit = 32 << 20

// hostsRecheck is how often the hosts file's modification time is looked at.
const hostsRecheck = 5 * time.Second

// HostsTable is the parsed content of a hosts(5) file.
type HostsTable struct {
	byWire map[string]bool         // lower-case names in wire form, for the wire path
	byName map[string][]netip.Addr // lower-case FQDN -> addresses, in file order
	byAddr map[netip.Addr][]string // address -> FQDNs, in file order
}

// ParseHosts reads a hosts(5) file. Lines it cannot use (a bad address, a
// bad name) are skipped and reported together in the error; the table
// holds every line that could be used.
func ParseHosts(r io.Reader) (*HostsTable, error) {
	t := &HostsTable{byWire: map[string]bool{}, byName: map[string][]netip.Addr{}, byAddr: map[netip.Addr][]string{}}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(fields[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: address %q: %w", line, fields[0], err))
			continue
		}
		addr = addr.WithZone("")
		if len(fields) < 2 {
			errs = append(errs, fmt.Errorf("line %d: address %s has no name", line, addr))
			continue
		}
		for _, name := range fields[1:] {
			if _, ok := dns.IsDomainName(name); !ok {
				errs = append(errs, fmt.Errorf("line %d: bad name %q", line, name))
				continue
			}
			fq := dns.Fqdn(strings.ToLower(name))
			var wb [256]byte
			if n, err := dns.PackDomainName(fq, wb[:], 0, nil, false); err == nil {
				t.byWire[string(wb[:n])] = true
			}
			t.byName[fq] = append(t.byName[fq], addr)
			t.byAddr[addr] = append(t.byAddr[addr], fq)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return t, errors.Join(errs...)
}

// Len is the number of names in the table.
func (t *HostsTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byName)
}

// Has reports whether the table knows name (any letter case, with or
// without the final dot).
func (t *HostsTable) Has(name string) bool {
	if t == nil {
		return false
	}
	_, ok := t.byName[dns.Fqdn(strings.ToLower(name))]
	return ok
}

// hasWire is Has for a lower-case name in wire form.
func (t *HostsTable) hasWire(lower []byte) bool { return t.byWire[string(lower)] }

// Answer answers q from the table, or returns nil when the table does not
// know the name. A known name asked for a type the table has no address
// of gets an empty NOERROR answer, as systemd-resolved does.
func (t *HostsTable) Answer(q *dns.Msg) *dns.Msg {
	if t == nil || len(q.Question) != 1 || q.Question[0].Qclass != dns.ClassINET {
		return nil
	}
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	var rrs []dns.RR
	switch qq.Qtype {
	case dns.TypePTR:
		addr, ok := addrOfPTR(name)
		if !ok {
			return nil
		}
		names, ok := t.byAddr[addr]
		if !ok {
			return nil
		}
		for _, n := range names {
			rrs = append(rrs, &dns.PTR{Hdr: hdr(qq.Name, dns.TypePTR), Ptr: n})
		}
	default:
		addrs, ok := t.byName[name]
		if !ok {
			return nil
		}
		for _, a := range addrs {
			switch {
			case qq.Qtype == dns.TypeA && a.Is4():
				rrs = append(rrs, &dns.A{Hdr: hdr(qq.Name, dns.TypeA), A: a.AsSlice()})
			case qq.Qtype == dns.TypeAAAA && a.Is6() && !a.Is4In6():
				rrs = append(rrs, &dns.AAAA{Hdr: hdr(qq.Name, dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Answer = rrs
	return m
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: hostsTTL}
}

// addrOfPTR turns "4.3.2.1.in-addr.arpa." or a nibble ip6.arpa name into
// an address.
func addrOfPTR(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
		return a, err == nil
	case strings.HasSuffix(name, ".ip6.arpa."):
		nibbles := strings.Split(strings.TrimSuffix(name, ".ip6.arpa."), ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var b bytes.Buffer
		for i := 31; i >= 0; i-- {
			if len(nibbles[i]) != 1 {
				return netip.Addr{}, false
			}
			b.WriteString(nibbles[i])
			if i%4 == 0 && i != 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		return a, err == nil
	}
	return netip.Addr{}, false
}

// hostsFile keeps a HostsTable loaded from a path up to date: the file's
// modification time is looked at no more often than hostsRecheck, and the
// file is read again when it changed. A missing file is an empty table.
type hostsFile struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time
	mtime   time.Time
	size    int64
	table   *HostsTable
	err     error // from the last load, for status
}

func (h *hostsFile) get() *HostsTable {
	if h == nil || h.path == "" {
		return nil
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked.IsZero() && now.Sub(h.checked) < hostsRecheck {
		return h.table
	}
	h.checked = now
	fi, err := os.Stat(h.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.table, h.err, h.mtime = nil, nil, time.Time{}
		return nil
	case err != nil:
		h.err = fmt.Errorf("stat hosts file %s: %w", h.path, err)
		return h.table
	case fi.ModTime().Equal(h.mtime) && fi.Size() == h.size && h.table != nil:
		return h.table
	}
	data, err := safefile.Read(h.path, HostsLimit)
	if err != nil {
		h.err = fmt.Errorf("read hosts file: %w", err)
		return h.table
	}
	t, err := ParseHosts(bytes.NewReader(data))
	h.table, h.mtime, h.size = t, fi.ModTime(), fi.Size()
	h.err = nil
	if err != nil {
		h.err = fmt.Errorf("hosts file %s: %w", h.path, err)
	}
	return h.table
}

func (h *hostsFile) lastErr() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
