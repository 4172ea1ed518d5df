package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// appendEvents writes evs inside tx, assigning Seq and CreatedAt.
func appendEventsPG(ctx context.Context, tx pgx.Tx, evs []OutboxEvent) error {
	ts := now()
	for i := range evs {
		if err := tx.QueryRow(ctx, `INSERT INTO event_outbox (partition, body, created_at) VALUES ($1, $2, $3) RETURNING seq`,
			evs[i].Partition, evs[i].Body, ts).Scan(&evs[i].Seq); err != nil {
			return fmt.Errorf("store: append events: %w", err)
		}
		evs[i].CreatedAt = ts
	}
	return nil
}

// AppendEvents implements Outbox.
func (s *pgStore) AppendEvents(ctx context.Context, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return s.inTx(ctx, "append events", func(tx pgx.Tx) error { return appendEventsPG(ctx, tx, evs) })
}

// PendingEvents implements Outbox.
func (s *pgStore) PendingEvents(ctx context.Context, sink string, skip []string, limit int) ([]OutboxEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.seq, o.partition, o.body, o.created_at FROM event_outbox o
		WHERE o.seq > COALESCE((SELECT watermark FROM event_sinks WHERE sink = $1), 0)
		  AND NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = $1 AND d.seq = o.seq)
		  AND o.partition <> ALL($2::text[])
		ORDER BY o.seq LIMIT $3`, sink, nonNil(skip), limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending events of %s: %w", sink, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxEvent, error) {
		var e OutboxEvent
		err := row.Scan(&e.Seq, &e.Partition, &e.Body, &e.CreatedAt)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: pending events of %s: %w", sink, err)
	}
	return out, nil
}

// SettleEvents implements Outbox.
func (s *pgStore) SettleEvents(ctx context.Context, sink string, settled []Settlement) error {
	if len(settled) == 0 {
		return nil
	}
	seqs := make([]int64, len(settled))
	for i, st := range settled {
		seqs[i] = st.Seq
	}
	return s.inTx(ctx, "settle events", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO event_settled (sink, seq) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING`,
			sink, seqs); err != nil {
			return fmt.Errorf("store: settle events for %s: %w", sink, err)
		}
		ts := now()
		for _, st := range settled {
			if !st.Dead {
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO event_dead_letters (sink, seq, partition, body, created_at, error, dead_at)
				SELECT $1, seq, partition, body, created_at, $3, $4 FROM event_outbox WHERE seq = $2
				ON CONFLICT (sink, seq) DO UPDATE SET error = EXCLUDED.error, dead_at = EXCLUDED.dead_at`,
				sink, st.Seq, st.Error, ts); err != nil {
				return fmt.Errorf("store: dead-letter event %d for %s: %w", st.Seq, sink, err)
			}
		}
		return nil
	})
}

// CompactOutbox implements Outbox.
func (s *pgStore) CompactOutbox(ctx context.Context, sink string, settledBefore time.Time) error {
	return s.inTx(ctx, "compact outbox", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO event_sinks (sink) VALUES ($1) ON CONFLICT DO NOTHING`, sink); err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		// Just below the first event that is unsettled or too recent to be
		// sure no lower Seq is still to commit.
		_, err := tx.Exec(ctx, `UPDATE event_sinks SET watermark = COALESCE(
			(SELECT min(o.seq) - 1 FROM event_outbox o WHERE o.seq > event_sinks.watermark
				AND (o.created_at >= $2 OR NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = $1 AND d.seq = o.seq))),
			(SELECT max(seq) FROM event_outbox WHERE created_at < $2),
			watermark) WHERE sink = $1`, sink, settledBefore.UTC())
		if err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM event_settled WHERE sink = $1
			AND seq <= (SELECT watermark FROM event_sinks WHERE sink = $1)`, sink); err != nil {
			return fmt.Errorf("store: compact outbox of %s: %w", sink, err)
		}
		return nil
	})
}

// PendingCount implements Outbox.
func (s *pgStore) PendingCount(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM event_outbox o
		WHERE o.seq > COALESCE((SELECT watermark FROM event_sinks WHERE sink = $1), 0)
		  AND NOT EXISTS (SELECT 1 FROM event_settled d WHERE d.sink = $1 AND d.seq = o.seq)`, sink).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: pending count of %s: %w", sink, err)
	}
	return n, nil
}

// DeadLetters implements Outbox.
func (s *pgStore) DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, partition, body, created_at, error, dead_at FROM event_dead_letters
		WHERE sink = $1 ORDER BY seq DESC LIMIT $2`, sink, limit)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters of %s: %w", sink, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		d := DeadLetter{Sink: sink}
		err := row.Scan(&d.Seq, &d.Partition, &d.Body, &d.CreatedAt, &d.Error, &d.DeadAt)
		d.CreatedAt, d.DeadAt = d.CreatedAt.UTC(), d.DeadAt.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters of %s: %w", sink, err)
	}
	return out, nil
}

// PruneOutbox implements Outbox.
func (s *pgStore) PruneOutbox(ctx context.Context, olderThan time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, "prune outbox", func(tx pgx.Tx) error {
		var last *int64
		if err := tx.QueryRow(ctx, `SELECT max(seq) FROM event_outbox WHERE created_at < $1`, olderThan.UTC()).Scan(&last); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		if last == nil {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM event_outbox WHERE seq <= $1`, *last)
		if err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `UPDATE event_sinks SET watermark = $1 WHERE watermark < $1`, *last); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM event_settled WHERE seq <= $1`, *last); err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		return nil
	})
	return n, err
}

// AcquireSinkLease implements Outbox.
func (s *pgStore) AcquireSinkLease(ctx context.Context, sink, holder string, ttl time.Duration) (bool, error) {
	if holder == "" {
		return false, errors.New("store: sink lease: empty holder")
	}
	var got bool
	err := s.inTx(ctx, "sink lease", func(tx pgx.Tx) error {
		ts := now()
		tag, err := tx.Exec(ctx, `INSERT INTO event_sinks (sink, lease_holder, lease_until) VALUES ($1, $2, $3)
			ON CONFLICT (sink) DO UPDATE SET lease_holder = $2, lease_until = $3
			WHERE event_sinks.lease_holder IN ('', $2) OR event_sinks.lease_until < $4`,
			sink, holder, ts.Add(ttl), ts)
		if err != nil {
			return fmt.Errorf("store: sink lease %s: %w", sink, err)
		}
		got = tag.RowsAffected() > 0
		return nil
	})
	return got, err
}
