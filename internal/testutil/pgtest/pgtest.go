// Package pgtest gives a test a PostgreSQL database of its own: a fresh
// schema on the local test server, dropped when the test ends. It starts the
// local cluster when it is not running, and skips (loudly) only when
// OPENIVS_NO_SERVICES=1 says that no services are available.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultDSN is the server tests use unless OPENIVS_TEST_POSTGRES names another.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN returns OPENIVS_TEST_POSTGRES, or DefaultDSN when it is unset.
func BaseDSN() string {
	if dsn := os.Getenv("OPENIVS_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// DSN returns a DSN for the test server whose search_path is a new, empty
// schema; the schema and everything in it is dropped when t ends. Close what
// was opened on it in an earlier-registered cleanup or by the end of the
// test, so that the drop does not wait for locks.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := connect(ctx, t, base)
	defer conn.Close(context.Background())

	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "SET lock_timeout = '20s'"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// withSearchPath adds search_path=schema to a URL or keyword/value DSN.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse OPENIVS_TEST_POSTGRES: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

// connect connects to dsn, starting the local cluster and creating the
// database when needed. It skips t when services are declared unavailable
// and fails it when the server cannot be reached.
func connect(ctx context.Context, t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := tryConnect(ctx, dsn)
	if err == nil {
		return conn
	}
	if os.Getenv("OPENIVS_NO_SERVICES") == "1" {
		t.Skipf("\n!!!!!!!! SKIPPED: PostgreSQL is not reachable (%v) and OPENIVS_NO_SERVICES=1. "+
			"These PostgreSQL tests did NOT run. !!!!!!!!", err)
	}
	startLocalCluster(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err = tryConnect(ctx, dsn)
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("pgtest: PostgreSQL at %s is not reachable even after trying to start it: %v "+
				"(set OPENIVS_TEST_POSTGRES, or OPENIVS_NO_SERVICES=1 to skip)", redact(dsn), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// tryConnect connects once; when the database does not exist it creates it
// through the server's maintenance database.
func tryConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	conn, err := pgx.ConnectConfig(cctx, cfg)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "3D000" { // invalid_catalog_name
		admin := cfg.Copy()
		admin.Database = "postgres"
		ac, aerr := pgx.ConnectConfig(cctx, admin)
		if aerr != nil {
			return nil, fmt.Errorf("%w; connect to create it: %w", err, aerr)
		}
		_, aerr = ac.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
		_ = ac.Close(cctx)
		if aerr != nil && !(errors.As(aerr, &pe) && pe.Code == "42P04") { // duplicate_database
			return nil, fmt.Errorf("%w; create it: %w", err, aerr)
		}
		conn, err = pgx.ConnectConfig(cctx, cfg)
	}
	return conn, err
}

// startLocalCluster asks Debian's pg_ctlcluster to start every installed
// cluster named main; "already running" and similar failures are logged only,
// since the caller retries connecting anyway.
func startLocalCluster(t testing.TB) {
	t.Helper()
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		t.Logf("pgtest: no cluster under /etc/postgresql to start")
		return
	}
	for _, v := range versions {
		cmd := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(v), "main", "start")
		out, err := cmd.CombinedOutput()
		t.Logf("pgtest: pg_ctlcluster %s main start: err=%v %s", filepath.Base(v), err, strings.TrimSpace(string(out)))
	}
}

// redact hides a password in a DSN.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	if strings.Contains(dsn, "password") {
		return "(DSN from OPENIVS_TEST_POSTGRES)"
	}
	return dsn
}
