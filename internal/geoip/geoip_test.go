package geoip_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/openivs/openivs/internal/geoip"
	"github.com/openivs/openivs/internal/geoip/geoiptest"
)

func open(t testing.TB, countries map[string]string) *geoip.DB {
	t.Helper()
	db, err := geoip.Open(geoiptest.Write(t, countries))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCountry(t *testing.T) {
	db := open(t, map[string]string{
		"203.0.113.0/24":   "FR",
		"203.0.113.128/25": "DE", // more specific wins
		"198.51.100.0/24":  "jp", // normalised to upper case
		"2001:db8::/32":    "US",
		"2001:db8:1::/48":  "CA",
	})
	if db.Type != "GeoLite2-Country" {
		t.Errorf("Type = %q", db.Type)
	}
	for _, tc := range []struct {
		addr, want string
	}{
		{"203.0.113.7", "FR"},
		{"203.0.113.200", "DE"},
		{"198.51.100.1", "JP"},
		{"::ffff:203.0.113.7", "FR"}, // v4-mapped, as from a dual-stack listener
		{"::ffff:198.51.100.1", "JP"},
		{"2001:db8::1", "US"},
		{"2001:db8:1::1", "CA"},
		{"2001:db8:2:3::4", "US"},
		{"192.0.2.1", ""}, // not in the database
		{"10.1.2.3", ""},  // private
		{"127.0.0.1", ""},
		{"::1", ""},
		{"2001:db9::1", ""},
		{"fe80::1%eth0", ""},
	} {
		// Twice: the first call decodes, the second is served from the cache.
		for range 2 {
			if got := db.Country(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Country(%s) = %q, want %q", tc.addr, got, tc.want)
			}
		}
	}
	if got := db.Country(netip.Addr{}); got != "" {
		t.Errorf("Country(zero Addr) = %q", got)
	}
}

func TestRegisteredCountryFallback(t *testing.T) {
	path := geoiptest.WriteRecords(t, "GeoIP2-City", map[string]mmdbtype.DataType{
		"203.0.113.0/24": mmdbtype.Map{
			"city":               mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Paris")}},
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String("FR")},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")},
		},
		"198.51.100.0/24": mmdbtype.Map{
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("NL")},
		},
		"192.0.2.0/24": mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String("EU")},
		},
	})
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for addr, want := range map[string]string{
		"203.0.113.1":  "FR", // country beats registered_country
		"198.51.100.1": "NL",
		"192.0.2.1":    "", // found, but no country at all
	} {
		for range 2 { // cold, then cached
			if got := db.Country(netip.MustParseAddr(addr)); got != want {
				t.Errorf("Country(%s) = %q, want %q", addr, got, want)
			}
		}
	}
}

// More distinct records than cache slots, so slots are shared and evicted:
// every answer must still be the record's own.
func TestCountryManyRecords(t *testing.T) {
	const n = 12000
	records := make(map[string]mmdbtype.DataType, n)
	want := make(map[netip.Addr]string, n)
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		code := string([]byte{'A' + byte(i%26), 'A' + byte(i/26%26)})
		records[netip.PrefixFrom(addr, 32).String()] = mmdbtype.Map{
			"country": mmdbtype.Map{
				"iso_code":   mmdbtype.String(code),
				"geoname_id": mmdbtype.Uint32(i), // keeps records distinct
			},
		}
		want[addr] = code
	}
	db, err := geoip.Open(geoiptest.WriteRecords(t, "GeoLite2-Country", records))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		for addr, code := range want {
			if got := db.Country(addr); got != code {
				t.Fatalf("Country(%s) = %q, want %q", addr, got, code)
			}
		}
	}
}

func TestNilAndClosed(t *testing.T) {
	var db *geoip.DB
	if got := db.Country(netip.MustParseAddr("203.0.113.7")); got != "" {
		t.Errorf("nil DB: Country = %q", got)
	}
	if err := db.Close(); err != nil {
		t.Errorf("nil DB: Close = %v", err)
	}

	db = open(t, map[string]string{"203.0.113.0/24": "FR"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if got := db.Country(netip.MustParseAddr("203.0.113.7")); got != "" {
		t.Errorf("closed DB: Country = %q", got)
	}
}

func TestConcurrentCountryAndClose(t *testing.T) {
	db := open(t, map[string]string{"203.0.113.0/24": "FR", "2001:db8::/32": "US"})
	v4, v6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::1")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				if got := db.Country(v4); got != "FR" && got != "" {
					t.Errorf("Country(v4) = %q", got)
					return
				}
				if got := db.Country(v6); got != "US" && got != "" {
					t.Errorf("Country(v6) = %q", got)
					return
				}
			}
		})
	}
	db.Close()
	wg.Wait()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := geoip.Open(filepath.Join(dir, "nope.mmdb")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not wrap fs.ErrNotExist", err)
	}
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("this is not a MaxMind database\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	asn := geoiptest.WriteRecords(t, "GeoLite2-ASN", map[string]mmdbtype.DataType{
		"203.0.113.0/24": mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(64496),
			"autonomous_system_organization": mmdbtype.String("Example"),
		},
	})
	flat := geoiptest.WriteRecords(t, "ipinfo country.mmdb", map[string]mmdbtype.DataType{
		"203.0.113.0/24": mmdbtype.Map{"country": mmdbtype.String("FR")},
	})
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), "no such file"},
		{"garbage", garbage, "not a MaxMind DB"},
		{"empty", empty, "not a MaxMind DB"},
		{"directory", dir, "geoip"},
		{"asn", asn, "no country data"},
		{"flat layout", flat, "no country data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := geoip.Open(tc.path)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A custom database with the GeoIP2 layout but an unconventional type name
// is accepted once its records are seen to carry countries.
func TestOpenCustomType(t *testing.T) {
	path := geoiptest.WriteRecords(t, "Acme-Internal", map[string]mmdbtype.DataType{
		"10.0.0.0/8": mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("GB")}},
	})
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Country(netip.MustParseAddr("10.9.8.7")); got != "GB" {
		t.Errorf("Country = %q, want GB", got)
	}
}

func TestCountryAllocs(t *testing.T) {
	db := open(t, map[string]string{"203.0.113.0/24": "FR"})
	addr := netip.MustParseAddr("203.0.113.7")
	if n := testing.AllocsPerRun(1000, func() { db.Country(addr) }); n != 0 {
		t.Errorf("Country allocates %v times per call", n)
	}
}

func BenchmarkCountry(b *testing.B) {
	db := open(b, map[string]string{
		"203.0.113.0/24":  "FR",
		"198.51.100.0/24": "JP",
		"2001:db8::/32":   "US",
	})
	addrs := []netip.Addr{
		netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.1"),
		netip.MustParseAddr("192.0.2.1"), // miss
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			db.Country(addrs[i%len(addrs)])
			i++
		}
	})
}
