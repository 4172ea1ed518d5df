package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultSQLiteFile is the database file Open uses inside the data directory
// when the DSN is empty or "sqlite".
const DefaultSQLiteFile = "openivs.db"

// Open opens (creating and migrating when needed) the store that dsn names:
//
//   - "" or "sqlite": SQLite file <dataDir>/openivs.db
//   - "sqlite:///abs/path.db", "sqlite://rel/path.db" or "sqlite:path.db":
//     that SQLite file (a query string is passed to the driver)
//   - "file:...": an SQLite URI, passed to the driver as is
//   - "postgres://..." or "postgresql://...": PostgreSQL. A search_path
//     parameter is honoured; a schema=NAME parameter creates that schema when
//     missing and uses it.
//
// Migrations run before Open returns.
func Open(ctx context.Context, dsn, dataDir string) (Store, error) {
	switch {
	case dsn == "" || dsn == "sqlite":
		if dataDir == "" {
			return nil, errors.New("store: open sqlite: data directory is empty")
		}
		return openSQLite(ctx, sqliteLocation{path: filepath.Join(dataDir, DefaultSQLiteFile)})
	case strings.HasPrefix(dsn, "sqlite:"):
		rest := strings.TrimPrefix(dsn, "sqlite:")
		// "sqlite:///abs" keeps the leading slash of the path; "sqlite://rel" does not have one.
		rest = strings.TrimPrefix(rest, "//")
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("store: open sqlite: no file in DSN %q", dsn)
		}
		return openSQLite(ctx, sqliteLocation{path: path, query: query})
	case strings.HasPrefix(dsn, "file:"):
		uri, query, _ := strings.Cut(dsn, "?")
		return openSQLite(ctx, sqliteLocation{uri: uri, query: query})
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		// The DSN may hold a password: name only its scheme.
		scheme, _, _ := strings.Cut(dsn, ":")
		return nil, fmt.Errorf("store: unsupported DSN scheme %q (want sqlite, file: or postgres://)", scheme)
	}
}
