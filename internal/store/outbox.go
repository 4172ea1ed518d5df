package store

import (
	"context"
	"time"
)

// OutboxEvent is one event in the outbox.
type OutboxEvent struct {
	Seq       int64 // assigned by the store; increases with every append
	Partition string
	Body      []byte
	CreatedAt time.Time // when it was appended
}

// Settlement ends one event's delivery to a sink: delivered (or filtered
// out), or given up on (Dead, with the last error).
type Settlement struct {
	Seq   int64
	Dead  bool
	Error string
}

// DeadLetter is an event a sink gave up on.
type DeadLetter struct {
	OutboxEvent
	Sink   string
	Error  string
	DeadAt time.Time
}

// Outbox keeps events until every sink has settled them. Sinks are named by
// their deliverer; a sink the store has not seen starts at the beginning of
// what the outbox holds.
type Outbox interface {
	// AppendEvents adds events in one transaction, assigning Seq and
	// CreatedAt.
	AppendEvents(ctx context.Context, evs []OutboxEvent) error
	// PendingEvents returns up to limit events the sink has not settled, in
	// Seq order, leaving out the partitions in skip.
	PendingEvents(ctx context.Context, sink string, skip []string, limit int) ([]OutboxEvent, error)
	// SettleEvents records deliveries and dead letters of a sink.
	SettleEvents(ctx context.Context, sink string, settled []Settlement) error
	// CompactOutbox folds the sink's settled events appended before
	// settledBefore into its watermark. Events appended later are left as
	// rows, because with PostgreSQL a transaction holding a lower Seq may
	// still commit.
	CompactOutbox(ctx context.Context, sink string, settledBefore time.Time) error
	// PendingCount is how many events the sink has not settled.
	PendingCount(ctx context.Context, sink string) (int64, error)
	// DeadLetters lists the sink's dead letters, newest first.
	DeadLetters(ctx context.Context, sink string, limit int) ([]DeadLetter, error)
	// PruneOutbox deletes events appended before olderThan and the
	// settlements of every sink up to them; dead letters stay.
	PruneOutbox(ctx context.Context, olderThan time.Time) (int64, error)
	// AcquireSinkLease makes holder the sink's deliverer until ttl from now
	// when the sink is free, its lease expired, or holder holds it already
	// (renewal). Nodes sharing a store deliver each sink from one node.
	AcquireSinkLease(ctx context.Context, sink, holder string, ttl time.Duration) (bool, error)
}
