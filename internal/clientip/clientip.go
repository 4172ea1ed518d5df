// Package clientip owns the answer to "which address is this viewer?" for
// playback restriction policies: the socket peer, or, when that peer is a
// configured trusted proxy, the client it reports in X-Forwarded-For.
// Anything a client could forge is only believed as far as trusted proxies
// vouch for it.
package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver picks the client address of a request. A nil or zero Resolver
// trusts no proxy and always answers with the socket peer. It is read-only
// after ParseTrusted and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// ParseTrusted builds a Resolver trusting the given proxies. Entries are
// addresses ("127.0.0.1", "::1") or CIDR prefixes ("10.0.0.0/8"); blank
// entries are ignored.
func ParseTrusted(list []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
			if err == nil && p.Addr().Is4In6() {
				// ::ffff:10.0.0.0/104 means 10.0.0.0/8; peers are
				// compared unmapped.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				if p.Bits() < 0 {
					err = fmt.Errorf("prefix is wider than the IPv4-mapped range")
				}
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil && a.Zone() != "" {
				err = fmt.Errorf("zoned address")
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("clientip: bad trusted proxy %q (want an IP or CIDR): %w", s, err)
		}
		// Masked, so "10.1.2.3/8" means the network and contains() is exact.
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// trusts reports whether a (already unmapped) is a trusted proxy.
func (r *Resolver) trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	// A link-local proxy peer arrives zoned; Prefix.Contains never matches
	// a zoned address.
	a = a.WithZone("")
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client address of req, or the zero Addr when
// req.RemoteAddr is unusable.
//
// The peer is the answer unless it is trusted. Then X-Forwarded-For is read
// right to left, since each proxy appends the address it saw: trusted hops
// are skipped and the first untrusted one is the client, because everything
// to its left was written by parties nobody vouches for. If every hop is
// trusted the leftmost is the client. A malformed entry ends the walk at the
// last good address: it was written by someone not trusted to write more.
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	peer := parseHost(req.RemoteAddr)
	if !peer.IsValid() || !r.trusts(peer) {
		return peer
	}
	client := peer
	hdr := req.Header.Values("X-Forwarded-For")
	for i := len(hdr) - 1; i >= 0; i-- {
		line := hdr[i]
		for line != "" {
			var field string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				field, line = line[j+1:], line[:j]
			} else {
				field, line = line, ""
			}
			field = strings.TrimSpace(field)
			if field == "" {
				continue // "a, , b" or a trailing comma: no hop
			}
			a, ok := parseXFF(field)
			if !ok {
				return client
			}
			client = a
			if !r.trusts(a) {
				return a
			}
		}
	}
	return client
}

// parseHost reads RemoteAddr. net/http sets "host:port"; a bare address
// (set by tests or a handler in front) is accepted too.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// parseXFF reads one X-Forwarded-For hop. Proxies write bare addresses, but
// some add a port or brackets ("203.0.113.7:4711", "[2001:db8::1]:443",
// "[2001:db8::1]"). Zones never belong in a forwarded address.
func parseXFF(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
				return netip.Addr{}, false
			}
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
