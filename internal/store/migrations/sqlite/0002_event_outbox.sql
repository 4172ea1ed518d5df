-- The event outbox: events are appended in the same transaction as the state
-- change that caused them and delivered at least once to every sink.
CREATE TABLE event_outbox (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    -- Delivery is ordered within a partition (a channel ARN, or an account).
    partition  TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX event_outbox_created_at ON event_outbox (created_at);

-- Per sink: every event with seq <= watermark is settled; above it, the
-- settled ones have a row in event_settled.
CREATE TABLE event_sinks (
    sink         TEXT    NOT NULL PRIMARY KEY,
    watermark    INTEGER NOT NULL DEFAULT 0,
    lease_holder TEXT    NOT NULL DEFAULT '',
    lease_until  TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE event_settled (
    sink TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;

-- Events a sink gave up on, with their body, so they stay visible after the
-- outbox is pruned.
CREATE TABLE event_dead_letters (
    sink       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    partition  TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    created_at TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    dead_at    TEXT    NOT NULL,
    PRIMARY KEY (sink, seq)
);
