package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// appendEvents writes evs inside tx, assigning Seq and CreatedAt.
func (s *sqliteStore) appendEvents(ctx context.Context, tx *sql.Tx, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO event_outbox (partition, body, created_at) VALUES (?, ?, ?) RETURNING seq`)
	if err != nil {
		return fmt.Errorf("store: append events: %w", err)
	}
	defer st.Close()
	ts := now()
	for i := range evs {
		if err := st.QueryRowContext(ctx, evs[i].Partition, evs[i].Body, ts.Format(timeLayout)).Scan(&evs[i].Seq); err != nil {
			return fmt.Errorf("store: append events: %w", err)
		}
		evs[i].CreatedAt = ts
	}
	return nil
}

// AppendEvents implements Outbox.
func (s *sqliteStore) AppendEvents(ctx context.Context, evs []OutboxEvent) error {
	return s.write(ctx, "append events", func(tx *sql.Tx) error { return s.appendEvents(ctx, tx, evs) })
}

// PendingEvents implements Outbox.
func (s *sqliteStore) PendingEvents(ctx context.Context, sink string, skip []string, limit int) ([]OutboxEvent, error) {
	skipJSON, err := json.Marshal(nonNil(skip))
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT o.seq, o.partition, o.body, o.created_at FROM event_outbox o
		WHERE o.seq > COALESCE((SELECT watermark FROM event_sinks WHERE sink = ?1), 0)
		  AND NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = ?1 AND d.seq = o.seq)
		  AND o.partition NOT IN (SELECT value FROM json_each(?2))
		ORDER BY o.seq LIMIT ?3`, sink, string(skipJSON), limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending events of %s: %w", sink, err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		var created string
		if err := rows.Scan(&e.Seq, &e.Partition, &e.Body, &created); err != nil {
			return nil, fmt.Errorf("store: pending events of %s: %w", sink, err)
		}
		if e.CreatedAt, err = time.Parse(timeLayout, created); err != nil {
			return nil, fmt.Errorf("store: event %d created_at: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending events of %s: %w", sink, err)
	}
	return out, nil
}

// SettleEvents implements Outbox.
func (s *sqliteStore) SettleEvents(ctx context.Context, sink string, settled []Settlement) error {
	if len(settled) == 0 {
		return nil
	}
	return s.write(ctx, "settle events", func(tx *sql.Tx) error {
		ts := now().Format(timeLayout)
		for _, st := range settled {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO event_settled (sink, seq) VALUES (?, ?)`, sink, st.Seq); err != nil {
				return fmt.Errorf("store: settle event %d for %s: %w", st.Seq, sink, err)
			}
			if !st.Dead {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO event_dead_letters (sink, seq, partition, body, created_at, error, dead_at)
				SELECT ?1, seq, partition, body, created_at, ?3, ?4 FROM event_outbox WHERE seq = ?2`, sink, st.Seq, st.Error, ts); err != nil {
				return fmt.Errorf("store: dead-letter event %d for %s: %w", st.Seq, sink, err)
			}
		}
		return nil
	})
}

// CompactOutbox implements Outbox.
func (s *sqliteStore) CompactOutbox(ctx context.Context, sink string, settledBefore time.Time) error {
	return s.write(ctx, "compact outbox", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO event_sinks (sink) VALUES (?)`, sink); err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		// The new watermark is just below the first event that is unsettled
		// or too recent to be sure no lower Seq is still to come.
		_, err := tx.ExecContext(ctx, `UPDATE event_sinks SET watermark = COALESCE(
			(SELECT min(o.seq) - 1 FROM event_outbox o WHERE o.seq > event_sinks.watermark
				AND (o.created_at >= ?2 OR NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = ?1 AND d.seq = o.seq))),
			(SELECT max(seq) FROM event_outbox),
			watermark) WHERE sink = ?1`,
			sink, settledBefore.UTC().Format(timeLayout))
		if err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_settled WHERE sink = ?1
			AND seq <= (SELECT watermark FROM event_sinks WHERE sink = ?1)`, sink); err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		return nil
	})
}

// PendingCount implements Outbox.
func (s *sqliteStore) PendingCount(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM event_outbox o
		WHERE o.seq > COALESCE((SELECT watermark FROM event_sinks WHERE sink = ?1), 0)
		  AND NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = ?1 AND d.seq = o.seq)`, sink).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: pending count of %s: %w", sink, err)
	}
	return n, nil
}

// DeadLetters implements Outbox.
func (s *sqliteStore) DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, partition, body, created_at, error, dead_at FROM event_dead_letters
		WHERE sink = ? ORDER BY seq DESC LIMIT ?`, sink, limit)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters of %s: %w", sink, err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		d := DeadLetter{Sink: sink}
		var created, dead string
		if err := rows.Scan(&d.Seq, &d.Partition, &d.Body, &created, &d.Error, &dead); err != nil {
			return nil, fmt.Errorf("store: dead letters of %s: %w", sink, err)
		}
		d.CreatedAt, err = time.Parse(timeLayout, created)
		if err == nil {
			d.DeadAt, err = time.Parse(timeLayout, dead)
		}
		if err != nil {
			return nil, fmt.Errorf("store: dead letter %d: %w", d.Seq, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneOutbox implements Outbox.
func (s *sqliteStore) PruneOutbox(ctx context.Context, olderThan time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune outbox", func(tx *sql.Tx) error {
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM event_outbox WHERE created_at < ?`,
			olderThan.UTC().Format(timeLayout)).Scan(&last); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		if !last.Valid {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE seq <= ?`, last.Int64)
		if err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		n, _ = res.RowsAffected()
		// Every sink is past the pruned events now, delivered or not.
		if _, err := tx.ExecContext(ctx, `UPDATE event_sinks SET watermark = ?1 WHERE watermark < ?1`, last.Int64); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_settled WHERE seq <= ?`, last.Int64); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		return nil
	})
	return n, err
}

// AcquireSinkLease implements Outbox.
func (s *sqliteStore) AcquireSinkLease(ctx context.Context, sink, holder string, ttl time.Duration) (bool, error) {
	if holder == "" {
		return false, errors.New("store: sink lease: empty holder")
	}
	var got bool
	err := s.write(ctx, "sink lease", func(tx *sql.Tx) error {
		ts := now()
		res, err := tx.ExecContext(ctx, `INSERT INTO event_sinks (sink, lease_holder, lease_until) VALUES (?1, ?2, ?3)
			ON CONFLICT (sink) DO UPDATE SET lease_holder = ?2, lease_until = ?3
			WHERE event_sinks.lease_holder IN ('', ?2) OR event_sinks.lease_until < ?4`,
			sink, holder, ts.Add(ttl).Format(timeLayout), ts.Format(timeLayout))
		if err != nil {
			return fmt.Errorf("store: sink lease %s: %w", sink, err)
		}
		n, _ := res.RowsAffected()
		got = n > 0
		return nil
	})
	return got, err
}
