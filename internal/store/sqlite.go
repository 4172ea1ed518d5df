package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteLocation names an SQLite database: a file path, or an SQLite URI
// ("file:..."), plus extra driver parameters.
type sqliteLocation struct {
	path  string
	uri   string
	query string
}

// dsn returns the driver DSN for one of the two pools. SQLite URIs are used
// throughout so that paths with '?' or '#' survive.
func (l sqliteLocation) dsn(write bool) (string, error) {
	q, err := url.ParseQuery(l.query)
	if err != nil {
		return "", fmt.Errorf("store: sqlite DSN parameters: %w", err)
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		// NORMAL is durable across application crashes in WAL mode; only an
		// OS crash or power loss can lose the last transactions.
		q.Add("_pragma", "synchronous(NORMAL)")
		// Writers take the write lock at BEGIN, so that a read-then-write
		// transaction cannot fail halfway with SQLITE_BUSY.
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	base := l.uri
	if base == "" {
		p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(l.path))
		base = "file:" + p
	}
	return base + "?" + q.Encode(), nil
}

const sqliteColumns = `arn, kind, account, name, COALESCE(parent, ''), uniq, refs, tags, doc, seq, created_at, updated_at`

// sqliteStore keeps two pools on one WAL database: a single writer
// connection, so that write transactions queue in Go instead of spinning on
// SQLITE_BUSY, and several readers, which WAL lets run beside the writer.
// Because of the single writer, Update's function may read from the store
// but must not write to it: that would wait for itself.
type sqliteStore struct {
	w, r *sql.DB

	// Statements on the read pool.
	get, getByUnique *sql.Stmt
	// Statements on the write pool, bound to a transaction with tx.StmtContext.
	getW, exists, nextSeq, insert, insertRef, deleteRef *sql.Stmt
	countAccount, countParent, countNoParent, update    *sql.Stmt
	referrer, deleteTreeRefs, deleteTree                *sql.Stmt
}

func openSQLite(ctx context.Context, loc sqliteLocation) (_ Store, err error) {
	if loc.path != "" {
		if err := os.MkdirAll(filepath.Dir(loc.path), 0o700); err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
	}
	wdsn, err := loc.dsn(true)
	if err != nil {
		return nil, err
	}
	rdsn, err := loc.dsn(false)
	if err != nil {
		return nil, err
	}
	s := &sqliteStore{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.w, err = sql.Open("sqlite", wdsn); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	if err := s.w.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if s.r, err = sql.Open("sqlite", rdsn); err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	s.r.SetConnMaxIdleTime(0)
	s.r.SetConnMaxLifetime(0)
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// treeCTE selects the resource ?1 and all its descendants.
const treeCTE = `WITH RECURSIVE tree(arn) AS (
	SELECT ?1
	UNION
	SELECT r.arn FROM resources r JOIN tree t ON r.parent = t.arn
) `

func (s *sqliteStore) prepare(ctx context.Context) error {
	stmts := []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{s.r, &s.get, `SELECT ` + sqliteColumns + ` FROM resources WHERE arn = ?`},
		{s.r, &s.getByUnique, `SELECT ` + sqliteColumns + ` FROM resources WHERE kind = ? AND uniq = ? AND uniq <> ''`},
		{s.w, &s.getW, `SELECT ` + sqliteColumns + ` FROM resources WHERE arn = ?`},
		{s.w, &s.exists, `SELECT 1 FROM resources WHERE arn = ?`},
		{s.w, &s.nextSeq, `UPDATE resource_seq SET value = value + 1 WHERE id = 1 RETURNING value`},
		{s.w, &s.insert, `INSERT INTO resources (arn, seq, kind, account, name, parent, uniq, refs, tags, doc, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{s.w, &s.insertRef, `INSERT INTO resource_refs (arn, ref_arn) VALUES (?, ?)`},
		{s.w, &s.deleteRef, `DELETE FROM resource_refs WHERE arn = ? AND ref_arn = ?`},
		{s.w, &s.countAccount, `SELECT count(*) FROM resources WHERE kind = ? AND account = ?`},
		{s.w, &s.countParent, `SELECT count(*) FROM resources WHERE kind = ? AND parent = ?`},
		{s.w, &s.countNoParent, `SELECT count(*) FROM resources WHERE kind = ? AND parent IS NULL`},
		{s.w, &s.update, `UPDATE resources SET name = ?, uniq = ?, refs = ?, tags = ?, doc = ?, updated_at = ? WHERE arn = ?`},
		// The resource itself first, so that the error names what was asked for when it can.
		{s.w, &s.referrer, treeCTE + `SELECT rr.ref_arn, rr.arn FROM resource_refs rr
			WHERE rr.ref_arn IN (SELECT arn FROM tree) AND rr.arn NOT IN (SELECT arn FROM tree)
			ORDER BY rr.ref_arn = ?1 DESC, rr.ref_arn, rr.arn LIMIT 1`},
		{s.w, &s.deleteTreeRefs, treeCTE + `DELETE FROM resource_refs WHERE arn IN (SELECT arn FROM tree)`},
		{s.w, &s.deleteTree, treeCTE + `DELETE FROM resources WHERE arn IN (SELECT arn FROM tree)`},
	}
	for _, st := range stmts {
		p, err := st.db.PrepareContext(ctx, st.text)
		if err != nil {
			return fmt.Errorf("store: sqlite prepare %q: %w", st.text, err)
		}
		*st.dst = p
	}
	return nil
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, all in one immediate transaction.
func (s *sqliteStore) migrate(ctx context.Context) error {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	return s.write(ctx, "migrate", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL)`); err != nil {
			return fmt.Errorf("store: sqlite migrate: %w", err)
		}
		applied, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		return applyMigrations(ctx, ms, applied, func(m migration) error {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, now().Format(timeLayout))
			return err
		})
	})
}

func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int64]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite migrate: %w", err)
	}
	defer rows.Close()
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("store: sqlite migrate: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sqlite migrate: %w", err)
	}
	return applied, nil
}

// applyMigrations runs apply for each migration not in applied, and refuses
// a database that a newer binary has migrated further than this one knows.
func applyMigrations(ctx context.Context, ms []migration, applied map[int64]bool, apply func(migration) error) error {
	known := map[int64]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("store: database has migration %d, unknown to this binary (downgrade?)", v)
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := apply(m); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
		slog.DebugContext(ctx, "store: applied migration", "migration", m.Name)
	}
	return nil
}

// write runs fn in an immediate transaction on the writer connection. fn's
// error is returned as is.
func (s *sqliteStore) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", op, err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanSQLite(row rowScanner) (*Resource, error) {
	var (
		r                Resource
		refs, tags       []byte
		created, updated string
	)
	if err := row.Scan(&r.ARN, &r.Kind, &r.Account, &r.Name, &r.Parent, &r.Unique,
		&refs, &tags, &r.Doc, &r.Seq, &created, &updated); err != nil {
		return nil, err
	}
	if len(refs) > 0 && string(refs) != "[]" {
		if err := json.Unmarshal(refs, &r.Refs); err != nil {
			return nil, fmt.Errorf("store: decode refs of %s: %w", r.ARN, err)
		}
	}
	var err error
	if r.Tags, err = decodeTags(tags); err != nil {
		return nil, err
	}
	if len(r.Doc) == 0 {
		r.Doc = nil
	}
	if r.CreatedAt, err = time.Parse(timeLayout, created); err != nil {
		return nil, fmt.Errorf("store: created_at of %s: %w", r.ARN, err)
	}
	if r.UpdatedAt, err = time.Parse(timeLayout, updated); err != nil {
		return nil, fmt.Errorf("store: updated_at of %s: %w", r.ARN, err)
	}
	return &r, nil
}

func encodeRefs(refs []string) (string, error) {
	if len(refs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(refs)
	if err != nil {
		return "", fmt.Errorf("store: encode refs: %w", err)
	}
	return string(b), nil
}

// sqliteConstraint reports whether err is a uniqueness violation.
func sqliteUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// checkExist returns a MissingError for the first of arns that does not exist.
func (s *sqliteStore) checkExist(ctx context.Context, tx *sql.Tx, arns []string) error {
	if len(arns) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, s.exists)
	for _, a := range arns {
		var one int
		switch err := st.QueryRowContext(ctx, a).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return &MissingError{ARN: a}
		case err != nil:
			return fmt.Errorf("store: check %s exists: %w", a, err)
		}
	}
	return nil
}

// Insert implements Store.
func (s *sqliteStore) Insert(ctx context.Context, r *Resource, q Quota) error {
	if err := validateInsert(r); err != nil {
		return err
	}
	refs := normalizeRefs(r.Refs)
	refsJSON, err := encodeRefs(refs)
	if err != nil {
		return err
	}
	tags, err := encodeTags(r.Tags)
	if err != nil {
		return err
	}
	var parent any
	if r.Parent != "" {
		parent = r.Parent
	}
	ts := now()
	var seq int64
	err = s.write(ctx, "insert", func(tx *sql.Tx) error {
		if err := s.checkExist(ctx, tx, dependencies(r.Parent, refs)); err != nil {
			return err
		}
		if q.Max > 0 {
			var n int
			var row *sql.Row
			switch {
			case !q.PerParent:
				row = tx.StmtContext(ctx, s.countAccount).QueryRowContext(ctx, r.Kind, r.Account)
			case r.Parent == "":
				row = tx.StmtContext(ctx, s.countNoParent).QueryRowContext(ctx, r.Kind)
			default:
				row = tx.StmtContext(ctx, s.countParent).QueryRowContext(ctx, r.Kind, r.Parent)
			}
			if err := row.Scan(&n); err != nil {
				return fmt.Errorf("store: insert %s: count: %w", r.ARN, err)
			}
			if n+1 > q.Max {
				return fmt.Errorf("%w: %d %s resources, limit %d", ErrQuotaExceeded, n, r.Kind, q.Max)
			}
		}
		if err := tx.StmtContext(ctx, s.nextSeq).QueryRowContext(ctx).Scan(&seq); err != nil {
			return fmt.Errorf("store: insert %s: next seq: %w", r.ARN, err)
		}
		_, err := tx.StmtContext(ctx, s.insert).ExecContext(ctx, r.ARN, seq, r.Kind, r.Account, r.Name, parent,
			r.Unique, refsJSON, tags, docOrEmpty(r.Doc), ts.Format(timeLayout), ts.Format(timeLayout))
		if sqliteUniqueViolation(err) {
			return fmt.Errorf("%w: %s", ErrAlreadyExists, r.ARN)
		}
		if err != nil {
			return fmt.Errorf("store: insert %s: %w", r.ARN, err)
		}
		ins := tx.StmtContext(ctx, s.insertRef)
		for _, ref := range refs {
			if _, err := ins.ExecContext(ctx, r.ARN, ref); err != nil {
				return fmt.Errorf("store: insert %s: ref %s: %w", r.ARN, ref, err)
			}
		}
		return s.appendEvents(ctx, tx, r.Events)
	})
	if err != nil {
		return err
	}
	r.Seq, r.CreatedAt, r.UpdatedAt = seq, ts, ts
	return nil
}

// Get implements Store.
func (s *sqliteStore) Get(ctx context.Context, arn string) (*Resource, error) {
	r, err := scanSQLite(s.get.QueryRowContext(ctx, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, arn)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", arn, err)
	}
	return r, nil
}

// GetByUnique implements Store.
func (s *sqliteStore) GetByUnique(ctx context.Context, kind, unique string) (*Resource, error) {
	r, err := scanSQLite(s.getByUnique.QueryRowContext(ctx, kind, unique))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s with that unique value", ErrNotFound, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s by unique: %w", kind, err)
	}
	return r, nil
}

// Update implements Store.
func (s *sqliteStore) Update(ctx context.Context, arn string, fn func(r *Resource) error) (*Resource, error) {
	var out *Resource
	err := s.write(ctx, "update", func(tx *sql.Tx) error {
		cur, err := scanSQLite(tx.StmtContext(ctx, s.getW).QueryRowContext(ctx, arn))
		if errors.Is(err, sql.ErrNoRows) {
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
		if err := s.checkExist(ctx, tx, added); err != nil {
			return err
		}
		refsJSON, err := encodeRefs(next.Refs)
		if err != nil {
			return err
		}
		tags, err := encodeTags(next.Tags)
		if err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, s.update).ExecContext(ctx, next.Name, next.Unique, refsJSON, tags,
			docOrEmpty(next.Doc), next.UpdatedAt.Format(timeLayout), arn)
		if sqliteUniqueViolation(err) {
			return fmt.Errorf("%w: %s unique value", ErrAlreadyExists, cur.Kind)
		}
		if err != nil {
			return fmt.Errorf("store: update %s: %w", arn, err)
		}
		del := tx.StmtContext(ctx, s.deleteRef)
		for _, ref := range addedRefs(next.Refs, cur.Refs) {
			if _, err := del.ExecContext(ctx, arn, ref); err != nil {
				return fmt.Errorf("store: update %s: drop ref %s: %w", arn, ref, err)
			}
		}
		ins := tx.StmtContext(ctx, s.insertRef)
		for _, ref := range added {
			if _, err := ins.ExecContext(ctx, arn, ref); err != nil {
				return fmt.Errorf("store: update %s: add ref %s: %w", arn, ref, err)
			}
		}
		if err := s.appendEvents(ctx, tx, next.Events); err != nil {
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

// applyUpdate calls fn on a copy of cur and returns the resource to write:
// cur with the fields fn may change taken from fn's copy.
func applyUpdate(ctx context.Context, cur *Resource, fn func(r *Resource) error) (*Resource, error) {
	if fn == nil {
		return nil, errors.New("store: update: nil function")
	}
	work := clone(cur)
	if err := fn(work); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr("update "+cur.ARN, err)
	}
	next := clone(cur)
	next.Name = work.Name
	next.Refs = normalizeRefs(work.Refs)
	next.Unique = work.Unique
	next.Tags = clone(work).Tags
	next.Doc = clone(work).Doc
	next.Events = work.Events
	if len(next.Doc) == 0 {
		next.Doc = nil
	}
	next.UpdatedAt = now()
	return next, nil
}

// Delete implements Store.
func (s *sqliteStore) Delete(ctx context.Context, arn string) error {
	return s.write(ctx, "delete", func(tx *sql.Tx) error {
		var one int
		switch err := tx.StmtContext(ctx, s.exists).QueryRowContext(ctx, arn).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: %s", ErrNotFound, arn)
		case err != nil:
			return fmt.Errorf("store: delete %s: %w", arn, err)
		}
		var refd, by string
		switch err := tx.StmtContext(ctx, s.referrer).QueryRowContext(ctx, arn).Scan(&refd, &by); {
		case err == nil:
			return &ReferencedError{ARN: refd, By: by}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: delete %s: find referrers: %w", arn, err)
		}
		if _, err := tx.StmtContext(ctx, s.deleteTreeRefs).ExecContext(ctx, arn); err != nil {
			return fmt.Errorf("store: delete %s: refs: %w", arn, err)
		}
		if _, err := tx.StmtContext(ctx, s.deleteTree).ExecContext(ctx, arn); err != nil {
			return fmt.Errorf("store: delete %s: %w", arn, err)
		}
		return nil
	})
}

// List implements Store.
func (s *sqliteStore) List(ctx context.Context, q Query) ([]*Resource, error) {
	text, args, err := listSQL(q, func(int) string { return "?" })
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteColumns+` FROM resources `+text, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", q.Kind, err)
	}
	defer rows.Close()
	var out []*Resource
	for rows.Next() {
		r, err := scanSQLite(rows)
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

// listSQL builds the WHERE, ORDER BY and LIMIT clauses of a List query;
// placeholder renders the n-th (1-based) parameter.
func listSQL(q Query, placeholder func(n int) string) (string, []any, error) {
	if q.Kind == "" {
		return "", nil, errors.New("store: list: empty kind")
	}
	var b strings.Builder
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		b.WriteString(" AND ")
		b.WriteString(strings.Replace(cond, "$", placeholder(len(args)), 1))
	}
	b.WriteString("WHERE kind = ")
	args = append(args, q.Kind)
	b.WriteString(placeholder(1))
	if q.Account != "" {
		add("account = $", q.Account)
	}
	if q.Parent != "" {
		add("parent = $", q.Parent)
	}
	if q.Name != "" {
		add("name = $", q.Name)
	}
	if q.Ref != "" {
		add("arn IN (SELECT arn FROM resource_refs WHERE ref_arn = $)", q.Ref)
	}
	if q.AfterSeq > 0 {
		if q.Descending {
			add("seq < $", q.AfterSeq)
		} else {
			add("seq > $", q.AfterSeq)
		}
	}
	b.WriteString(" ORDER BY seq")
	if q.Descending {
		b.WriteString(" DESC")
	}
	if q.Limit > 0 {
		args = append(args, q.Limit)
		b.WriteString(" LIMIT " + placeholder(len(args)))
	}
	return b.String(), args, nil
}

// Close implements Store.
func (s *sqliteStore) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.get, s.getByUnique, s.getW, s.exists, s.nextSeq, s.insert, s.insertRef,
		s.deleteRef, s.countAccount, s.countParent, s.countNoParent, s.update, s.referrer, s.deleteTreeRefs, s.deleteTree} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close sqlite: %w", err)
	}
	return nil
}
