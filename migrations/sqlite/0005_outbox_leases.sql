-- Transactional outbox and stage leases (see the Postgres migration for the why).
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        TEXT NOT NULL,
    queue         TEXT NOT NULL,
    business_id   INTEGER NOT NULL,
    stage         TEXT NOT NULL,
    call_id       INTEGER,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX outbox_by_claim ON outbox (claimed_until, id);
CREATE INDEX outbox_by_call ON outbox (call_id);

ALTER TABLE calls ADD COLUMN lease_token INTEGER;
ALTER TABLE calls ADD COLUMN lease_until INTEGER;

CREATE INDEX jobs_by_call ON jobs (call_id);

CREATE TABLE orphan_alarms (
    call_id    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    found_at   INTEGER NOT NULL,
    PRIMARY KEY (call_id, version)
);
