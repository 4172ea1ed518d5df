package store

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openivs/openivs/internal/testutil/pgtest"
)

func TestPostgres(t *testing.T) {
	runSuite(t, func(t *testing.T) location { return location{dsn: pgtest.DSN(t)} })
}

func TestPostgresSchemaParam(t *testing.T) {
	// schema=NAME creates that schema when it is missing and works in it.
	// Take a fresh name from pgtest and drop it here first, so that Open has
	// to create it; pgtest's cleanup drops it again afterwards.
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `DROP SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	q.Del("search_path")
	q.Set("schema", schema)
	u.RawQuery = q.Encode()

	s := openAt(t, location{dsn: u.String()})
	mustInsert(t, s, &Resource{ARN: "a", Kind: "k"}, Quota{})
	var got string
	if err := s.(*pgStore).pool.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&got); err != nil || got != schema {
		t.Fatalf("current_schema = %q, %v; want %q", got, err, schema)
	}
}

func BenchmarkPostgresGet(b *testing.B) {
	s, err := Open(context.Background(), pgtest.DSN(b), "")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchmarkGet(b, s)
}
