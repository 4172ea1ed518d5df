-- The event outbox: events are appended in the same transaction as the state
-- change that caused them and delivered at least once to every sink.
CREATE TABLE event_outbox (
    seq        bigserial   NOT NULL PRIMARY KEY,
    -- Delivery is ordered within a partition (a channel ARN, or an account).
    partition  text        NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX event_outbox_created_at ON event_outbox (created_at);

-- Per sink: every event with seq <= watermark is settled; above it, the
-- settled ones have a row in event_settled.
CREATE TABLE event_sinks (
    sink         text        NOT NULL PRIMARY KEY,
    watermark    bigint      NOT NULL DEFAULT 0,
    lease_holder text        NOT NULL DEFAULT '',
    lease_until  timestamptz NOT NULL DEFAULT 'epoch'
);

CREATE TABLE event_settled (
    sink text   NOT NULL,
    seq  bigint NOT NULL,
    PRIMARY KEY (sink, seq)
);

-- Events a sink gave up on, with their body, so they stay visible after the
-- outbox is pruned.
CREATE TABLE event_dead_letters (
    sink       text        NOT NULL,
    seq        bigint      NOT NULL,
    partition  text        NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    error      text        NOT NULL,
    dead_at    timestamptz NOT NULL,
    PRIMARY KEY (sink, seq)
);
