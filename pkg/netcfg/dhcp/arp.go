package dhcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// ARP address conflict detection (RFC 5227) of an offered address before
// it is configured.

// ProbeCount is the number of ARP probes sent over Options.ARPProbe.
const ProbeCount = 3

// arpPacketLen is an ARP packet for IPv4 over Ethernet (RFC 826): 8 bytes
// of header, then sender MAC and IP, target MAC and IP.
const arpPacketLen = 28

const (
	arpRequest = 1
	arpReply   = 2
)

// arpPacket is an ARP packet for IPv4 over Ethernet.
type arpPacket struct {
	Op                 uint16
	SenderHW, TargetHW net.HardwareAddr
	SenderIP, TargetIP netip.Addr
}

// parseARP reads an ARP packet (without its link header). Anything but
// IPv4 over Ethernet, or shorter than that, is an error; bytes after the
// packet (Ethernet padding) are ignored.
func parseARP(b []byte) (arpPacket, error) {
	if len(b) < arpPacketLen {
		return arpPacket{}, fmt.Errorf("arp packet of %d bytes, want at least %d", len(b), arpPacketLen)
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != unix.ETH_P_IP || b[4] != 6 || b[5] != 4 {
		return arpPacket{}, errors.New("arp packet is not for IPv4 over Ethernet")
	}
	p := arpPacket{Op: binary.BigEndian.Uint16(b[6:8])}
	p.SenderHW = net.HardwareAddr(bytes.Clone(b[8:14]))
	p.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	p.TargetHW = net.HardwareAddr(bytes.Clone(b[18:24]))
	p.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return p, nil
}

func (p arpPacket) marshal() []byte {
	b := make([]byte, arpPacketLen)
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], unix.ETH_P_IP)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], p.Op)
	copy(b[8:14], p.SenderHW)
	s, t := p.SenderIP.As4(), p.TargetIP.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], p.TargetHW)
	copy(b[24:28], t[:])
	return b
}

// conflicts reports whether p, seen while probing addr from hw, shows that
// another host uses or wants addr (RFC 5227 2.1.1): it is sent from addr,
// or it is another host's probe for addr.
func (p arpPacket) conflicts(addr netip.Addr, hw net.HardwareAddr) bool {
	if bytes.Equal(p.SenderHW, hw) {
		return false // our own packet
	}
	if p.SenderIP == addr {
		return true
	}
	return p.Op == arpRequest && p.SenderIP == netip.IPv4Unspecified() && p.TargetIP == addr
}

// ErrAddressInUse is the cause of a declined offer.
var ErrAddressInUse = errors.New("address in use")

// openARP opens an ARP packet socket on the link, in its namespace.
func (e *rawExchanger) openARP() (*packet.Conn, error) {
	var conn *packet.Conn
	err := InNetNS(e.ns, func() error {
		ifi, err := net.InterfaceByName(e.link)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open arp socket on %s: %w", e.link, err)
	}
	return conn, nil
}

// probe sends ProbeCount ARP probes for addr spread over window and
// listens until the window ends; it returns an error wrapping
// ErrAddressInUse, naming the other host, when someone answers for addr.
func (e *rawExchanger) probe(ctx context.Context, addr netip.Addr, window time.Duration) error {
	conn, err := e.openARP()
	if err != nil {
		return err
	}
	defer conn.Close()
	end := time.Now().Add(window)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	probe := arpPacket{Op: arpRequest, SenderHW: e.hw, TargetHW: make(net.HardwareAddr, 6),
		SenderIP: netip.IPv4Unspecified(), TargetIP: addr}.marshal()
	bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	buf := make([]byte, 1500)
	for i := range ProbeCount {
		if _, err := conn.WriteTo(probe, bcast); err != nil {
			return fmt.Errorf("send arp probe for %s on %s: %w", addr, e.link, err)
		}
		next := end
		if i < ProbeCount-1 {
			next = time.Now().Add(window / ProbeCount)
		}
		if err := conn.SetReadDeadline(next); err != nil {
			return fmt.Errorf("arp socket on %s: %w", e.link, err)
		}
		for {
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return fmt.Errorf("read arp on %s: %w", e.link, err)
			}
			p, err := parseARP(buf[:n])
			if err != nil {
				continue
			}
			if p.conflicts(addr, e.hw) {
				return fmt.Errorf("%s on %s: %w by %s", addr, e.link, ErrAddressInUse, p.SenderHW)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// announce sends an ARP announcement (RFC 5227 2.3) for addr, now ours,
// so neighbours update their caches.
func (e *rawExchanger) announce(addr netip.Addr) error {
	conn, err := e.openARP()
	if err != nil {
		return err
	}
	defer conn.Close()
	p := arpPacket{Op: arpRequest, SenderHW: e.hw, TargetHW: make(net.HardwareAddr, 6), SenderIP: addr, TargetIP: addr}
	if _, err := conn.WriteTo(p.marshal(), &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}); err != nil {
		return fmt.Errorf("send arp announcement for %s on %s: %w", addr, e.link, err)
	}
	return nil
}
