// Package geoip owns the country lookup behind IVS playback restriction
// policies (allowedCountries): it reads the MaxMind-format database given by
// --geoip-db (GeoLite2-Country, GeoIP2-Country, GeoLite2-City or anything
// with the same record layout) and maps a client address to an ISO 3166-1
// alpha-2 code.
package geoip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is an open country database. It is safe for concurrent use, including
// Close while lookups are in flight. A nil *DB knows no countries.
type DB struct {
	state atomic.Pointer[state]
	// Type is the database_type from the file's metadata, e.g.
	// "GeoLite2-Country", for logs.
	Type string
}

// state is one opened file with the decode cache that belongs to it.
type state struct {
	r *maxminddb.Reader
	// cache maps a record's data offset to its country. A country database
	// has a few thousand distinct records shared by ~500k networks, so
	// decoding each once takes reflection and allocation off the hot path.
	// Direct-mapped and lossy: a collision only costs a decode.
	cache [cacheSize]atomic.Uint64
}

const (
	cacheBits = 13
	cacheSize = 1 << cacheBits
	// An entry is (offset+1)<<16 | code, so the zero entry is empty. code
	// is 0 for "no country" or 1+index into letterPairs.
	codeBits = 16
)

// letterPairs holds "AA".."ZZ" as substrings of one string, so a cached
// code turns back into a string without allocating.
var letterPairs = func() []string {
	var b strings.Builder
	for c0 := byte('A'); c0 <= 'Z'; c0++ {
		for c1 := byte('A'); c1 <= 'Z'; c1++ {
			b.WriteByte(c0)
			b.WriteByte(c1)
		}
	}
	all := b.String()
	pairs := make([]string, 0, 26*26)
	for i := 0; i < len(all); i += 2 {
		pairs = append(pairs, all[i:i+2])
	}
	return pairs
}()

// record is the part of a GeoIP2 country/city record that playback needs;
// decoding nothing else keeps lookups cheap.
type record struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	// Networks with no physical country (anycast, some satellite and
	// corporate ranges) only carry the country the block is registered in.
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// probeLimit bounds how many records Open decodes to check the layout of a
// database whose type does not announce country data.
const probeLimit = 4096

// Open reads the database at path. It fails on a missing file, a file that
// is not a MaxMind DB, and a database without country data.
func Open(path string) (*DB, error) {
	// Read the file rather than mmap it: a reader never faults on a file
	// truncated or rewritten in place, and Close cannot unmap memory under
	// a concurrent lookup. Country databases are a few MB, City ones tens.
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: open database: %w", err)
	}
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, fmt.Errorf("geoip: %s is not a MaxMind DB file: %w", path, err)
	}
	if err := checkCountryData(r); err != nil {
		return nil, fmt.Errorf("geoip: %s (database type %q): %w", path, r.Metadata.DatabaseType, err)
	}
	db := &DB{Type: r.Metadata.DatabaseType}
	db.state.Store(&state{r: r})
	return db, nil
}

// errNoCountry says the database is readable but cannot answer
// allowedCountries; failing at startup beats denying every viewer.
var errNoCountry = errors.New("no country data (want a GeoLite2/GeoIP2 Country or City database)")

func checkCountryData(r *maxminddb.Reader) error {
	typ := r.Metadata.DatabaseType
	announced := strings.Contains(typ, "Country") || strings.Contains(typ, "City")
	n := 0
	for res := range r.Networks() {
		var rec record
		if err := res.Decode(&rec); err != nil {
			// e.g. a flat {"country":"FR"} layout: every lookup would fail.
			return fmt.Errorf("%w: record for %s: %v", errNoCountry, res.Prefix(), err)
		}
		if rec.Country.ISOCode != "" || rec.RegisteredCountry.ISOCode != "" {
			return nil
		}
		n++
		if (announced && n >= 16) || n >= probeLimit {
			break
		}
	}
	if announced {
		// An empty Country database is odd but well formed.
		return nil
	}
	return errNoCountry
}

// Country returns the upper-case ISO 3166-1 alpha-2 code for addr, or "" when
// the database does not know it: not found (private and reserved ranges are
// not in the real databases), an unreadable record, a closed or nil DB.
func (db *DB) Country(addr netip.Addr) string {
	if db == nil || !addr.IsValid() {
		return ""
	}
	st := db.state.Load()
	if st == nil {
		return ""
	}
	// ::ffff:a.b.c.d from a dual-stack listener must land in the IPv4 tree.
	addr = addr.Unmap()
	if addr.Is6() && st.r.Metadata.IPVersion == 4 {
		return "" // the reader would build an error for this
	}
	res := st.r.Lookup(addr)
	if !res.Found() {
		return ""
	}
	off := uint64(res.Offset()) + 1
	slot := &st.cache[(off*0x9E3779B97F4A7C15)>>(64-cacheBits)]
	if e := slot.Load(); e>>codeBits == off {
		if c := e & (1<<codeBits - 1); c != 0 {
			return letterPairs[c-1]
		}
		return ""
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return ""
	}
	code := rec.Country.ISOCode
	if code == "" {
		code = rec.RegisteredCountry.ISOCode
	}
	code = strings.ToUpper(code)
	if c, ok := pairIndex(code); ok {
		slot.Store(off<<codeBits | c)
	}
	return code
}

// pairIndex encodes "" or a two-letter code for the cache; anything else
// is left uncached and decoded every time.
func pairIndex(code string) (uint64, bool) {
	switch {
	case code == "":
		return 0, true
	case len(code) == 2 && 'A' <= code[0] && code[0] <= 'Z' && 'A' <= code[1] && code[1] <= 'Z':
		return 1 + uint64(code[0]-'A')*26 + uint64(code[1]-'A'), true
	}
	return 0, false
}

// Close releases the database; later lookups return "". It is safe to call
// on a nil DB and more than once.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	// The reader owns a heap buffer, not a mapping, so in-flight lookups
	// keep it alive and the garbage collector frees it after them; calling
	// Reader.Close here would race with them.
	db.state.Store(nil)
	return nil
}
