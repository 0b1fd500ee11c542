-- Transactional outbox and stage leases.
-- outbox: a job that a committed change implies, waiting for the RabbitMQ relay to publish
-- it with confirms (the database broker writes the `jobs` row itself in the same commit).
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    job_id        TEXT NOT NULL,
    queue         TEXT NOT NULL,
    business_id   BIGINT NOT NULL,
    stage         TEXT NOT NULL,
    call_id       BIGINT,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    -- A relay that claimed the row owns it until then (a crashed relay's rows come back).
    claimed_until BIGINT NOT NULL DEFAULT 0,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX outbox_by_claim ON outbox (claimed_until, id);
CREATE INDEX outbox_by_call ON outbox (call_id);

-- The lease of the stage run that owns a running call: a start is refused while another
-- run's lease is alive, and a run commits its result only while it still holds the lease.
ALTER TABLE calls ADD COLUMN lease_token BIGINT;
ALTER TABLE calls ADD COLUMN lease_until BIGINT;

-- The orphan check looks jobs up by call.
CREATE INDEX jobs_by_call ON jobs (call_id);

-- Orphan alarms are raised once per call and stage position.
CREATE TABLE orphan_alarms (
    call_id    BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    found_at   BIGINT NOT NULL,
    PRIMARY KEY (call_id, version)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'callops_viewer') THEN
        GRANT SELECT ON outbox, orphan_alarms TO callops_viewer, callops_support;
        -- support actions (link → notify, QC, lead) imply jobs: they write them in the outbox.
        GRANT INSERT ON outbox TO callops_support;
        GRANT ALL ON outbox, orphan_alarms TO callops_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO callops_support, callops_admin;
    END IF;
END
$$;
