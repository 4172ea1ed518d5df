package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStore keeps resources in PostgreSQL so that several nodes can share
// them. Transactions run at READ COMMITTED and take explicit locks:
//
//   - Insert and Update lock each parent and ref they add FOR KEY SHARE, so
//     that a concurrent Delete of it either finishes first (and the writer
//     sees it missing) or waits for the writer (and then sees the new
//     child or reference).
//   - Update locks its row FOR NO KEY UPDATE: writers of the same resource
//     queue, while children and references to it can still be added.
//   - Delete locks the resource and, level by level, its descendants FOR
//     UPDATE before it checks for referrers.
//   - Insert with a quota takes a transaction-scoped advisory lock on (kind,
//     account or parent) before counting.
//
// A transaction that loses a deadlock is run again, so Update may call its
// function more than once.
type pgStore struct {
	pool *pgxpool.Pool
}

const pgColumns = `arn, kind, account, name, COALESCE(parent, ''), uniq, refs, tags, doc, seq, created_at, updated_at`

func openPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors do not repeat the password.
		return nil, fmt.Errorf("store: postgres DSN: %w", err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	schema, hasSchema := rp["schema"]
	if hasSchema {
		// "schema" is not a server setting: it would fail the startup message.
		delete(rp, "schema")
		if schema == "" {
			return nil, errors.New("store: postgres DSN: empty schema parameter")
		}
		rp["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(10, 4*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	s := &pgStore{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: open postgres %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	create := ""
	if hasSchema {
		create = schema
	}
	if err := s.migrate(ctx, create); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations in one transaction, serialized across nodes by an
// advisory lock on the search path.
func (s *pgStore) migrate(ctx context.Context, createSchema string) error {
	ms, err := loadMigrations("postgres")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('openivs/migrate/' || current_setting('search_path'), 0))`); err != nil {
			return fmt.Errorf("store: postgres migrate: lock: %w", err)
		}
		if createSchema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{createSchema}.Sanitize()); err != nil {
				return fmt.Errorf("store: postgres migrate: create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    bigint      NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL)`); err != nil {
			return fmt.Errorf("store: postgres migrate: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("store: postgres migrate: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("store: postgres migrate: %w", err)
		}
		applied := map[int64]bool{}
		for _, v := range versions {
			applied[v] = true
		}
		return applyMigrations(ctx, ms, applied, func(m migration) error {
			// Without arguments pgx uses the simple protocol, which runs
			// every statement of the file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, now())
			return err
		})
	})
}

// inTx runs fn in a READ COMMITTED transaction, again when it loses a
// deadlock or serialization race. fn's own errors are returned as is.
func (s *pgStore) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.once(ctx, op, fn)
		if err == nil || !pgRetryable(err) || attempt == maxRetries {
			return err
		}
		// Back off a little, growing, so the winners can finish.
		t := time.NewTimer(time.Duration(attempt+1) * 2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctxErr(op, ctx.Err())
		case <-t.C:
		}
	}
}

func (s *pgStore) once(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		// A fresh context: a cancelled one would leave the connection mid-transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: %s: commit: %w", op, err)
	}
	return nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// pgRetryable reports a deadlock or serialization failure.
func pgRetryable(err error) bool {
	switch pgCode(err) {
	case "40P01", "40001":
		return true
	}
	return false
}

func scanPG(row pgx.Row) (*Resource, error) {
	var (
		r    Resource
		tags []byte
	)
	if err := row.Scan(&r.ARN, &r.Kind, &r.Account, &r.Name, &r.Parent, &r.Unique,
		&r.Refs, &tags, &r.Doc, &r.Seq, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	var err error
	if r.Tags, err = decodeTags(tags); err != nil {
		return nil, err
	}
	if len(r.Refs) == 0 {
		r.Refs = nil
	}
	if len(r.Doc) == 0 {
		r.Doc = nil
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

// lockExisting locks arns FOR KEY SHARE (in ARN order, to keep lock order
// stable) and returns a MissingError for the first one that does not exist.
func lockExisting(ctx context.Context, tx pgx.Tx, arns []string) error {
	if len(arns) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT arn FROM resources WHERE arn = ANY($1) ORDER BY arn FOR KEY SHARE`, arns)
	if err != nil {
		return fmt.Errorf("store: lock %v: %w", arns, err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("store: lock %v: %w", arns, err)
	}
	set := make(map[string]bool, len(found))
	for _, a := range found {
		set[a] = true
	}
	return firstMissing(arns, set)
}

// Insert implements Store.
func (s *pgStore) Insert(ctx context.Context, r *Resource, q Quota) error {
	if err := validateInsert(r); err != nil {
		return err
	}
	refs := normalizeRefs(r.Refs)
	tags, err := encodeTags(r.Tags)
	if err != nil {
		return err
	}
	var parent *string
	if r.Parent != "" {
		parent = &r.Parent
	}
	ts := now()
	var seq int64
	err = s.inTx(ctx, "insert", func(tx pgx.Tx) error {
		if err := lockExisting(ctx, tx, dependencies(r.Parent, refs)); err != nil {
			return err
		}
		if q.Max > 0 {
			scope := "a/" + r.Account
			if q.PerParent {
				scope = "p/" + r.Parent
			}
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/quota/' || $1, 0))`,
				r.Kind+"/"+scope); err != nil {
				return fmt.Errorf("store: insert %s: quota lock: %w", r.ARN, err)
			}
			var n int
			var row pgx.Row
			switch {
			case !q.PerParent:
				row = tx.QueryRow(ctx, `SELECT count(*) FROM resources WHERE kind = $1 AND account = $2`, r.Kind, r.Account)
			case r.Parent == "":
				row = tx.QueryRow(ctx, `SELECT count(*) FROM resources WHERE kind = $1 AND parent IS NULL`, r.Kind)
			default:
				row = tx.QueryRow(ctx, `SELECT count(*) FROM resources WHERE kind = $1 AND parent = $2`, r.Kind, r.Parent)
			}
			if err := row.Scan(&n); err != nil {
				return fmt.Errorf("store: insert %s: count: %w", r.ARN, err)
			}
			if n+1 > q.Max {
				return fmt.Errorf("%w: %d %s resources, limit %d", ErrQuotaExceeded, n, r.Kind, q.Max)
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO resources (arn, kind, account, name, parent, uniq, refs, tags, doc, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $10) RETURNING seq`,
			r.ARN, r.Kind, r.Account, r.Name, parent, r.Unique, nonNil(refs), tags, docOrEmpty(r.Doc), ts).Scan(&seq)
		switch pgCode(err) {
		case "":
		case "23505":
			return fmt.Errorf("%w: %s", ErrAlreadyExists, r.ARN)
		case "23503":
			// lockExisting makes this unreachable; keep the error type anyway.
			return &MissingError{ARN: dependencies(r.Parent, refs)[0]}
		}
		if err != nil {
			return fmt.Errorf("store: insert %s: %w", r.ARN, err)
		}
		if len(refs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO resource_refs (arn, ref_arn) SELECT $1, unnest($2::text[])`, r.ARN, refs); err != nil {
				return fmt.Errorf("store: insert %s: refs: %w", r.ARN, err)
			}
		}
		return appendEventsPG(ctx, tx, r.Events)
	})
	if err != nil {
		return err
	}
	r.Seq, r.CreatedAt, r.UpdatedAt = seq, ts, ts
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Get implements Store.
func (s *pgStore) Get(ctx context.Context, arn string) (*Resource, error) {
	r, err := scanPG(s.pool.QueryRow(ctx, `SELECT `+pgColumns+` FROM resources WHERE arn = $1`, arn))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, arn)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", arn, err)
	}
	return r, nil
}

// GetByUnique implements Store.
func (s *pgStore) GetByUnique(ctx context.Context, kind, unique string) (*Resource, error) {
	r, err := scanPG(s.pool.QueryRow(ctx, `SELECT `+pgColumns+` FROM resources WHERE kind = $1 AND uniq = $2 AND uniq <> ''`, kind, unique))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s with that unique value", ErrNotFound, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s by unique: %w", kind, err)
	}
	return r, nil
}

// Update implements Store.
func (s *pgStore) Update(ctx context.Context, arn string, fn func(r *Resource) error) (*Resource, error) {
	var out *Resource
	err := s.inTx(ctx, "update", func(tx pgx.Tx) error {
		cur, err := scanPG(tx.QueryRow(ctx, `SELECT `+pgColumns+` FROM resources WHERE arn = $1 FOR NO KEY UPDATE`, arn))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotFound, arn)
		}
		if err != nil {
			return fmt.Errorf("store: update %s: read: %w", arn, err)
		}
		next, err := applyUpdate(ctx, cur, fn)
		if err != nil {
			return err
		}
		added := addedRefs(cur.Refs, next.Refs)
		if err := lockExisting(ctx, tx, added); err != nil {
			return err
		}
		tags, err := encodeTags(next.Tags)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE resources SET name = $1, uniq = $2, refs = $3, tags = $4::jsonb, doc = $5, updated_at = $6 WHERE arn = $7`,
			next.Name, next.Unique, nonNil(next.Refs), tags, docOrEmpty(next.Doc), next.UpdatedAt, arn)
		if pgCode(err) == "23505" {
			return fmt.Errorf("%w: %s unique value", ErrAlreadyExists, cur.Kind)
		}
		if err != nil {
			return fmt.Errorf("store: update %s: %w", arn, err)
		}
		if removed := addedRefs(next.Refs, cur.Refs); len(removed) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM resource_refs WHERE arn = $1 AND ref_arn = ANY($2)`, arn, removed); err != nil {
				return fmt.Errorf("store: update %s: drop refs: %w", arn, err)
			}
		}
		if len(added) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO resource_refs (arn, ref_arn) SELECT $1, unnest($2::text[])`, arn, added); err != nil {
				return fmt.Errorf("store: update %s: add refs: %w", arn, err)
			}
		}
		if err := appendEventsPG(ctx, tx, next.Events); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete implements Store.
func (s *pgStore) Delete(ctx context.Context, arn string) error {
	return s.inTx(ctx, "delete", func(tx pgx.Tx) error {
		var got string
		err := tx.QueryRow(ctx, `SELECT arn FROM resources WHERE arn = $1 FOR UPDATE`, arn).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotFound, arn)
		}
		if err != nil {
			return fmt.Errorf("store: delete %s: %w", arn, err)
		}
		// Lock the descendants one generation at a time: a child inserted
		// before its parent was locked has committed by the time the lock
		// is granted, so the next query sees it.
		tree := []string{arn}
		seen := map[string]bool{arn: true}
		for frontier := tree; len(frontier) > 0; {
			rows, err := tx.Query(ctx, `SELECT arn FROM resources WHERE parent = ANY($1) ORDER BY arn FOR UPDATE`, frontier)
			if err != nil {
				return fmt.Errorf("store: delete %s: children: %w", arn, err)
			}
			kids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("store: delete %s: children: %w", arn, err)
			}
			frontier = frontier[:0:0]
			for _, k := range kids {
				if !seen[k] {
					seen[k] = true
					frontier = append(frontier, k)
					tree = append(tree, k)
				}
			}
		}
		var refd, by string
		err = tx.QueryRow(ctx, `SELECT ref_arn, arn FROM resource_refs
			WHERE ref_arn = ANY($1) AND NOT arn = ANY($1)
			ORDER BY ref_arn = $2 DESC, ref_arn, arn LIMIT 1`, tree, arn).Scan(&refd, &by)
		switch {
		case err == nil:
			return &ReferencedError{ARN: refd, By: by}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("store: delete %s: find referrers: %w", arn, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resource_refs WHERE arn = ANY($1)`, tree); err != nil {
			return fmt.Errorf("store: delete %s: refs: %w", arn, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE arn = ANY($1)`, tree); err != nil {
			return fmt.Errorf("store: delete %s: %w", arn, err)
		}
		return nil
	})
}

// List implements Store.
func (s *pgStore) List(ctx context.Context, q Query) ([]*Resource, error) {
	text, args, err := listSQL(q, func(n int) string { return fmt.Sprintf("$%d", n) })
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+pgColumns+` FROM resources `+text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", q.Kind, err)
	}
	defer rows.Close()
	var out []*Resource
	for rows.Next() {
		r, err := scanPG(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", q.Kind, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list %s: %w", q.Kind, err)
	}
	return out, nil
}

// Close implements Store.
func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}
