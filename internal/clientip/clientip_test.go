package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustResolver(t testing.TB, list ...string) *Resolver {
	t.Helper()
	r, err := ParseTrusted(list)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func request(remote string, xff ...string) *http.Request {
	req := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	return req
}

func TestParseTrusted(t *testing.T) {
	r := mustResolver(t, "10.0.0.0/8", " 127.0.0.1 ", "::1", "", "2001:db8::/32", "192.168.1.77/16", "::ffff:172.16.0.0/108")
	for addr, want := range map[string]bool{
		"10.1.2.3":        true,
		"11.0.0.1":        false,
		"127.0.0.1":       true,
		"127.0.0.2":       false,
		"::1":             true,
		"2001:db8:5::1":   true,
		"2001:db9::1":     false,
		"192.168.200.1":   true, // host bits masked off
		"172.16.3.4":      true, // mapped prefix applies to IPv4 peers
		"172.32.0.1":      false,
		"203.0.113.7":     false,
		"::ffff:10.0.0.1": false, // trusts() is only ever asked about unmapped addresses
	} {
		if got := r.trusts(netip.MustParseAddr(addr)); got != want {
			t.Errorf("trusts(%s) = %v, want %v", addr, got, want)
		}
	}

	for _, bad := range []string{"10.0.0.0/33", "localhost", "10.0.0", "fe80::1%eth0", "::ffff:0:0/90", "1.2.3.4/"} {
		_, err := ParseTrusted([]string{"127.0.0.1", bad})
		if err == nil {
			t.Errorf("ParseTrusted(%q) succeeded", bad)
			continue
		}
		if !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("error %q does not name the entry %q", err, bad)
		}
	}

	for _, empty := range [][]string{nil, {}, {"", "  "}} {
		r, err := ParseTrusted(empty)
		if err != nil {
			t.Fatal(err)
		}
		if r.trusts(netip.MustParseAddr("127.0.0.1")) {
			t.Errorf("ParseTrusted(%q) trusts loopback", empty)
		}
	}
}

func TestAddr(t *testing.T) {
	proxies := mustResolver(t, "10.0.0.0/8", "127.0.0.1", "::1", "2001:db8:ffff::/48", "fe80::/10")
	for _, tc := range []struct {
		name   string
		r      *Resolver
		remote string
		xff    []string
		want   string // "" for the zero Addr
	}{
		{"no header", proxies, "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer spoofing", proxies, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"untrusted peer spoofing a chain", proxies, "203.0.113.7:5000", []string{"198.51.100.1, 10.0.0.1"}, "203.0.113.7"},
		{"trusted peer", proxies, "10.0.0.5:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted peer, no header", proxies, "10.0.0.5:5000", nil, "10.0.0.5"},
		{"trusted peer, empty header", proxies, "10.0.0.5:5000", []string{""}, "10.0.0.5"},
		{"client spoofs left of the real hop", proxies, "10.0.0.5:5000",
			[]string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", proxies, "127.0.0.1:5000",
			[]string{"192.0.2.9, 198.51.100.1, 10.0.0.3, 10.0.0.2"}, "198.51.100.1"},
		{"all hops trusted: leftmost", proxies, "127.0.0.1:5000",
			[]string{"10.0.0.9, 10.0.0.3"}, "10.0.0.9"},
		{"whitespace and empty fields", proxies, "10.0.0.5:5000",
			[]string{"  198.51.100.1 ,\t, 10.0.0.3 ,"}, "198.51.100.1"},
		{"multiple header lines, right line wins", proxies, "10.0.0.5:5000",
			[]string{"192.0.2.1", "198.51.100.1, 10.0.0.3"}, "198.51.100.1"},
		{"multiple header lines, walk crosses lines", proxies, "10.0.0.5:5000",
			[]string{"192.0.2.1, 198.51.100.1", "10.0.0.4", "10.0.0.3"}, "198.51.100.1"},
		{"garbage right away", proxies, "10.0.0.5:5000", []string{"not-an-ip"}, "10.0.0.5"},
		{"garbage behind a trusted hop", proxies, "10.0.0.5:5000",
			[]string{"198.51.100.1, unknown, 10.0.0.3"}, "10.0.0.3"},
		{"garbage left of the client is never read", proxies, "10.0.0.5:5000",
			[]string{"<script>, 198.51.100.1"}, "198.51.100.1"},
		{"obfuscated hop", proxies, "10.0.0.5:5000", []string{"_hidden"}, "10.0.0.5"},
		{"zone in header", proxies, "10.0.0.5:5000", []string{"fe80::1%eth0"}, "10.0.0.5"},
		{"hop with port", proxies, "10.0.0.5:5000", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 peer and hops", proxies, "[::1]:5000",
			[]string{"2001:db8:1::1, 2001:db8:ffff::2"}, "2001:db8:1::1"},
		{"bracketed IPv6 hop", proxies, "[::1]:5000", []string{"[2001:db8:1::1]"}, "2001:db8:1::1"},
		{"bracketed IPv6 hop with port", proxies, "[::1]:5000", []string{"[2001:db8:1::1]:443"}, "2001:db8:1::1"},
		{"untrusted IPv6 peer", proxies, "[2001:db8:1::1]:5000", []string{"198.51.100.1"}, "2001:db8:1::1"},
		{"mapped peer is unmapped and trusted", proxies, "[::ffff:10.0.0.5]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"mapped hop is unmapped", proxies, "10.0.0.5:5000", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"mapped trusted hop is skipped", proxies, "10.0.0.5:5000", []string{"198.51.100.1, ::ffff:10.0.0.3"}, "198.51.100.1"},
		{"zoned link-local proxy", proxies, "[fe80::1%eth0]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"zoned untrusted peer", mustResolver(t, "10.0.0.0/8"), "[fe80::1%eth0]:5000", []string{"198.51.100.1"}, "fe80::1%eth0"},
		{"peer without port", proxies, "203.0.113.7", nil, "203.0.113.7"},
		{"unparsable peer", proxies, "pipe", []string{"198.51.100.1"}, ""},
		{"empty peer", proxies, "", []string{"198.51.100.1"}, ""},
		{"empty resolver trusts nobody", &Resolver{}, "127.0.0.1:5000", []string{"198.51.100.1"}, "127.0.0.1"},
		{"nil resolver trusts nobody", nil, "127.0.0.1:5000", []string{"198.51.100.1"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Addr(request(tc.remote, tc.xff...))
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Errorf("Addr = %v, want %v", got, want)
			}
		})
	}
}

// headerAddrs is an independent reading of what addresses a header holds,
// loose enough to include anything Addr may legitimately return.
func headerAddrs(lines []string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, line := range lines {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if a, err := netip.ParseAddr(f); err == nil {
				out[a.Unmap()] = true
			}
			if ap, err := netip.ParseAddrPort(f); err == nil {
				out[ap.Addr().Unmap()] = true
			}
			if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(f, "["), "]")); err == nil {
				out[a.Unmap()] = true
			}
		}
	}
	return out
}

func FuzzAddr(f *testing.F) {
	for _, seed := range [][2]string{
		{"203.0.113.7:5000", "198.51.100.1"},
		{"10.0.0.5:5000", "198.51.100.1"},
		{"10.0.0.5:5000", "192.0.2.9, 198.51.100.1, 10.0.0.3"},
		{"10.0.0.5:5000", "10.0.0.9, 10.0.0.3"},
		{"10.0.0.5:5000", "198.51.100.1, unknown, 10.0.0.3"},
		{"10.0.0.5:5000", "192.0.2.1\n198.51.100.1, 10.0.0.3"},
		{"10.0.0.5:5000", " , ,,\t"},
		{"[::1]:5000", "[2001:db8:1::1]:443, 2001:db8:ffff::2"},
		{"[::ffff:10.0.0.5]:5000", "::ffff:198.51.100.1"},
		{"[fe80::1%eth0]:5000", "fe80::2%eth0"},
		{"127.0.0.1", "[::ffff:1.2.3.4]"},
		{"", ""},
		{"garbage", "1.2.3.4"},
	} {
		f.Add(seed[0], seed[1])
	}
	r, err := ParseTrusted([]string{"10.0.0.0/8", "127.0.0.1", "::1", "2001:db8:ffff::/48", "fe80::/10"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		lines := strings.Split(xff, "\n")
		got := r.Addr(request(remote, lines...))

		var peer netip.Addr
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			peer = ap.Addr().Unmap()
		} else if a, err := netip.ParseAddr(remote); err == nil {
			peer = a.Unmap()
		}
		if got == peer {
			return
		}
		if !peer.IsValid() {
			t.Fatalf("peer %q is unusable but Addr = %v", remote, got)
		}
		if !r.trusts(peer) {
			t.Fatalf("untrusted peer %v, but Addr = %v from the header", peer, got)
		}
		if !headerAddrs(lines)[got] {
			t.Fatalf("Addr = %v is neither the peer %v nor in the header %q", got, peer, xff)
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("Addr = %v is mapped or zoned", got)
		}
	})
}

func BenchmarkAddr(b *testing.B) {
	r := mustResolver(b, "10.0.0.0/8", "127.0.0.1", "::1")
	req := request("10.0.0.5:5000", "192.0.2.9, 198.51.100.1, 10.0.0.3, 10.0.0.2")
	b.ReportAllocs()
	for b.Loop() {
		r.Addr(req)
	}
}
