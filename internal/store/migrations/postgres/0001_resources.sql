-- Resources of every kind in one table: the store owns identity, the few
-- indexed columns services query by, tags, quotas and referential rules; the
-- owning service keeps everything else in doc.
CREATE TABLE resources (
    arn        text        NOT NULL PRIMARY KEY,
    seq        bigserial   NOT NULL UNIQUE,
    kind       text        NOT NULL,
    account    text        NOT NULL,
    name       text        NOT NULL DEFAULT '',
    -- NULL when the resource has no parent, so that the foreign key holds.
    parent     text        REFERENCES resources (arn) ON DELETE CASCADE,
    uniq       text        NOT NULL DEFAULT '',
    -- Refs in the order they were written; resource_refs indexes them.
    refs       text[]      NOT NULL DEFAULT '{}',
    tags       jsonb       NOT NULL DEFAULT '{}',
    doc        bytea       NOT NULL DEFAULT '\x',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX resources_kind_account_seq ON resources (kind, account, seq);
CREATE INDEX resources_kind_parent_seq ON resources (kind, parent, seq);
CREATE INDEX resources_kind_name ON resources (kind, name);
-- Foreign-key cascades and child lookups search by parent alone.
CREATE INDEX resources_parent ON resources (parent);
CREATE UNIQUE INDEX resources_kind_uniq ON resources (kind, uniq) WHERE uniq <> '';

CREATE TABLE resource_refs (
    arn     text NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
    ref_arn text NOT NULL REFERENCES resources (arn),
    PRIMARY KEY (arn, ref_arn)
);

CREATE INDEX resource_refs_ref_arn ON resource_refs (ref_arn);
