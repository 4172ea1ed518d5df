-- Resources of every kind in one table: the store owns identity, the few
-- indexed columns services query by, tags, quotas and referential rules; the
-- owning service keeps everything else in doc.
CREATE TABLE resources (
    arn        TEXT    NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL UNIQUE,
    kind       TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    name       TEXT    NOT NULL DEFAULT '',
    -- NULL when the resource has no parent, so that the foreign key holds.
    parent     TEXT    REFERENCES resources (arn) ON DELETE CASCADE,
    uniq       TEXT    NOT NULL DEFAULT '',
    -- Refs in the order they were written (JSON array); resource_refs indexes them.
    refs       TEXT    NOT NULL DEFAULT '[]',
    tags       TEXT    NOT NULL DEFAULT '{}',
    doc        BLOB    NOT NULL DEFAULT x'',
    -- UTC, fixed-width RFC 3339 with microseconds, so text order is time order.
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);

CREATE INDEX resources_kind_account_seq ON resources (kind, account, seq);
CREATE INDEX resources_kind_parent_seq ON resources (kind, parent, seq);
CREATE INDEX resources_kind_name ON resources (kind, name);
-- Foreign-key cascades and child lookups search by parent alone.
CREATE INDEX resources_parent ON resources (parent);
CREATE UNIQUE INDEX resources_kind_uniq ON resources (kind, uniq) WHERE uniq <> '';

-- Seq must keep increasing even after the newest resource is deleted, so it
-- comes from a counter rather than max(seq)+1.
CREATE TABLE resource_seq (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO resource_seq (id, value) VALUES (1, 0);

CREATE TABLE resource_refs (
    arn     TEXT NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
    ref_arn TEXT NOT NULL REFERENCES resources (arn),
    PRIMARY KEY (arn, ref_arn)
) WITHOUT ROWID;

CREATE INDEX resource_refs_ref_arn ON resource_refs (ref_arn);
