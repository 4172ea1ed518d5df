// Package geoiptest writes small MaxMind-format country databases for tests
// of code that takes a --geoip-db file, so no test needs a real GeoLite2
// download.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Write builds a GeoLite2-Country shaped database in t.TempDir() and returns
// its path. Keys are CIDR prefixes ("203.0.113.0/24", "2001:db8::/32"),
// values ISO 3166-1 alpha-2 codes; each prefix gets the record
// {"country":{"iso_code":CODE}}. The tree is IPv6 with IPv4 aliased into it,
// like the real databases, so both families resolve.
func Write(t testing.TB, countries map[string]string) string {
	t.Helper()
	records := make(map[string]mmdbtype.DataType, len(countries))
	for p, code := range countries {
		records[p] = mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(code)},
		}
	}
	return WriteRecords(t, "GeoLite2-Country", records)
}

// WriteRecords is Write for arbitrary record shapes and database types, for
// tests of fallbacks (registered_country) and of databases that are not
// country databases at all.
func WriteRecords(t testing.TB, databaseType string, records map[string]mmdbtype.DataType) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: databaseType,
		Description:  map[string]string{"en": "openivs geoiptest database"},
		Languages:    []string{"en"},
		IPVersion:    6,
		RecordSize:   24,
		// Tests use documentation and private ranges, which the writer
		// otherwise refuses.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatalf("geoiptest: new tree: %v", err)
	}
	// Insert shorter prefixes first so a more specific entry overrides its
	// covering network whatever the map order.
	type entry struct {
		key  string
		net  *net.IPNet
		bits int
	}
	entries := make([]entry, 0, len(records))
	for p := range records {
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			t.Fatalf("geoiptest: bad prefix %q: %v", p, err)
		}
		bits, size := n.Mask.Size()
		bits += 128 - size // IPv4 sits under ::/96 in the tree
		entries = append(entries, entry{p, n, bits})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].bits != entries[j].bits {
			return entries[i].bits < entries[j].bits
		}
		return entries[i].key < entries[j].key
	})
	for _, e := range entries {
		if err := tree.Insert(e.net, records[e.key]); err != nil {
			t.Fatalf("geoiptest: insert %s: %v", e.key, err)
		}
	}
	path := filepath.Join(t.TempDir(), "test.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geoiptest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geoiptest: close %s: %v", path, err)
	}
	return path
}
