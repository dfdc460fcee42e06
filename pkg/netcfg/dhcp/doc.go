// Package dhcp is netcfg's DHCP side: the DHCPv4 client (one Client per
// link declared with `dhcp: v4`), the DHCPv6 client and the router
// advertisement DNS of links declared with `dhcp: v6`.
//
// It owns the lease of its link: discovery (DISCOVER, OFFER, REQUEST,
// ACK), renewal at T1 (unicast to the server), rebinding at T2
// (broadcast), and removal of the address when the lease expires or a
// server refuses it (NAK). The address is installed with the lease's
// remaining time as its kernel lifetime, together with the default route
// (option 3) or the classless static routes (option 121) and the MTU
// (option 26). The lease is kept in a file of netcfg's state directory;
// after a restart it is asked for again (INIT-REBOOT) and, when no server
// answers, kept until it expires, so a restart of hostd never takes the
// address off the link. On stop, the lease is released only when
// Options.Release says so.
//
// Packets go through a packet socket on the link (insomniacslk/dhcp's
// nclient4), open only for the length of one transaction. Everything a
// server sends is checked by hostd's own parser (ParseLease,
// ParseClasslessRoutes, ParseSearchList): bounded lists, ranges, no
// pointer loops; it is fuzzed (FuzzParseLease).
//
// Before an offered address is configured it is probed by ARP (RFC 5227,
// Options.ARPProbe) and declined (DHCPDECLINE) when another host answers
// for it. The link's carrier is followed through netlink: on loss the
// address stays for Options.CarrierGrace, then goes while the lease is
// kept; when carrier returns, the lease is asked for again (INIT-REBOOT).
//
// For IPv6 (`dhcp: v6`), EnableRA and RunRA turn on the kernel's router
// advertisement handling (SLAAC addresses, default routes) for a link and
// follow the RDNSS and DNSSL options of its advertisements, read from
// netlink (RTM_NEWNDUSEROPT, parsed by ParseNDUserOpts, fuzzed), each kept
// for its lifetime. Client6 is the DHCPv6 client (nclient6): one address
// (IA_NA) installed with its lifetimes, renewed at T1, rebound at T2,
// released on stop when asked, and the DNS options 23 and 24 (checked by
// ParseLease6, fuzzed). Its lease is kept in a file too and confirmed
// (CONFIRM) after a restart or when carrier returns, its address kept
// meanwhile; it follows carrier as the DHCPv4 client does and, with
// Options6.RequireManaged, solicits only while the link's router
// advertisements set the M flag (ReadRAFlags, from the kernel).
//
// It does not do DNS itself: the DNS servers and search domains of a
// lease or an advertisement are handed to the caller (Options.OnChange,
// Options6.OnChange, RunRA's onDNS), which feeds them to the resolver.
package dhcp
