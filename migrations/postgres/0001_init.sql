-- callops schema, PostgreSQL dialect. Times are Unix epoch milliseconds (BIGINT) in both
-- dialects so one set of queries serves Postgres and SQLite. Flags are 0/1 BIGINTs for the
-- same reason.

CREATE TABLE businesses (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    timezone          TEXT NOT NULL DEFAULT 'UTC',
    default_region    TEXT NOT NULL DEFAULT 'DE',
    stt_provider      TEXT NOT NULL DEFAULT 'simulated',
    llm_provider      TEXT NOT NULL DEFAULT 'simulated',
    crm_provider      TEXT NOT NULL DEFAULT 'builtin',
    auto_qc           BIGINT NOT NULL DEFAULT 1,
    auto_create_leads BIGINT NOT NULL DEFAULT 1,
    lead_filter       BIGINT NOT NULL DEFAULT 0,
    link_threshold    DOUBLE PRECISION NOT NULL DEFAULT 0.85,
    settings          TEXT NOT NULL DEFAULT '{}',
    active            BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL
);

CREATE TABLE agents (
    id          BIGSERIAL PRIMARY KEY,
    business_id BIGINT NOT NULL REFERENCES businesses(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    prompt      TEXT NOT NULL,
    fields      TEXT NOT NULL DEFAULT '[]',
    version     BIGINT NOT NULL DEFAULT 1,
    auto_qc     BIGINT NOT NULL DEFAULT 1,
    campaign    TEXT,
    enabled     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE customers (
    id              BIGSERIAL PRIMARY KEY,
    business_id     BIGINT NOT NULL REFERENCES businesses(id),
    external_id     TEXT,
    name            TEXT,
    name_normalized TEXT,
    phone           TEXT,
    email           TEXT,
    is_temporary    BIGINT NOT NULL DEFAULT 0,
    merged_into     BIGINT REFERENCES customers(id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX customers_by_phone ON customers (business_id, phone);
CREATE INDEX customers_by_name ON customers (business_id, name_normalized);
CREATE UNIQUE INDEX customers_by_external ON customers (business_id, external_id);

CREATE TABLE leads (
    id           BIGSERIAL PRIMARY KEY,
    business_id  BIGINT NOT NULL REFERENCES businesses(id),
    customer_id  BIGINT REFERENCES customers(id),
    phone        TEXT NOT NULL,
    name         TEXT,
    status       TEXT NOT NULL DEFAULT 'new',
    source       TEXT NOT NULL DEFAULT 'call',
    call_count   BIGINT NOT NULL DEFAULT 0,
    crm_id       TEXT,
    external_id  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (business_id, phone)
);

CREATE TABLE calls (
    id                 BIGSERIAL PRIMARY KEY,
    business_id        BIGINT NOT NULL REFERENCES businesses(id),
    external_id        TEXT NOT NULL,
    direction          TEXT NOT NULL DEFAULT 'inbound',
    from_number        TEXT,
    from_e164          TEXT,
    number_status      TEXT,
    to_number          TEXT,
    agent_name         TEXT,
    campaign           TEXT,
    language           TEXT,
    started_at         BIGINT,
    duration_ms        BIGINT NOT NULL DEFAULT 0,
    audio_url          TEXT,
    stage              TEXT NOT NULL,
    state              TEXT NOT NULL,
    state_since        BIGINT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    customer_id        BIGINT REFERENCES customers(id),
    lead_id            BIGINT REFERENCES leads(id),
    link_status        TEXT,
    link_method        TEXT,
    link_confidence    DOUBLE PRECISION,
    extracted_name     TEXT,
    review_priority    BIGINT,
    review_reason      TEXT,
    review_deferred_until BIGINT,
    intent             TEXT,
    raw                TEXT NOT NULL DEFAULT '{}',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL DEFAULT 0,
    UNIQUE (business_id, external_id)
);
-- Stuck calls by stage age: only in-flight calls are indexed, ordered by how long they sat.
CREATE INDEX calls_in_flight_by_age ON calls (stage, state_since)
    WHERE state IN ('pending', 'running', 'retrying');
-- Review queue by priority, then age.
CREATE INDEX calls_review_queue ON calls (review_priority DESC, state_since)
    WHERE state = 'review';
CREATE INDEX calls_by_business_state ON calls (business_id, state, stage);
CREATE INDEX calls_by_customer ON calls (customer_id);
CREATE INDEX calls_by_from ON calls (business_id, from_e164);

CREATE TABLE transcripts (
    call_id        BIGINT PRIMARY KEY REFERENCES calls(id),
    provider       TEXT NOT NULL,
    language       TEXT,
    text           TEXT NOT NULL,
    segments       TEXT NOT NULL DEFAULT '[]',
    stt_skipped    TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE analyses (
    id            BIGSERIAL PRIMARY KEY,
    call_id       BIGINT NOT NULL REFERENCES calls(id),
    agent_id      BIGINT REFERENCES agents(id),
    agent_version BIGINT NOT NULL DEFAULT 1,
    kind          TEXT NOT NULL,
    cache_key     TEXT NOT NULL,
    result        TEXT NOT NULL,
    raw_output    TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (call_id, agent_id, agent_version)
);
CREATE INDEX analyses_by_cache_key ON analyses (cache_key);

CREATE TABLE call_events (
    id          BIGSERIAL PRIMARY KEY,
    call_id     BIGINT NOT NULL,
    business_id BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    stage       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT,
    actor       TEXT NOT NULL DEFAULT 'pipeline'
);
CREATE INDEX call_events_by_call ON call_events (call_id, id);

-- Per business, stage and minute: what went through. The overview reads the last hour.
CREATE TABLE throughput (
    minute        BIGINT NOT NULL,
    business_id   BIGINT NOT NULL,
    stage         TEXT NOT NULL,
    calls         BIGINT NOT NULL DEFAULT 0,
    audio_seconds BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, business_id, stage)
);

-- Database broker. A claim moves run_at past the visibility timeout, so an expired claim
-- is simply claimable again: no separate "locked" state to repair after a crash.
CREATE TABLE jobs (
    id                BIGSERIAL PRIMARY KEY,
    job_id            TEXT NOT NULL,
    queue             TEXT NOT NULL,
    business_id       BIGINT NOT NULL,
    stage             TEXT NOT NULL,
    call_id           BIGINT,
    payload           TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    errors            TEXT NOT NULL DEFAULT '[]',
    first_enqueued_at BIGINT NOT NULL,
    enqueued_at       BIGINT NOT NULL,
    run_at            BIGINT NOT NULL,
    claimed_at        BIGINT,
    claim_token       BIGINT,
    deliveries        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_claim ON jobs (queue, run_at, id);
CREATE INDEX jobs_by_stage_queue ON jobs (stage, queue);

CREATE TABLE dead_jobs (
    id              BIGSERIAL PRIMARY KEY,
    job_id          TEXT NOT NULL,
    business_id     BIGINT,
    stage           TEXT,
    call_id         BIGINT,
    queue           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    headers         TEXT NOT NULL DEFAULT '{}',
    attempts        BIGINT NOT NULL,
    errors          TEXT NOT NULL DEFAULT '[]',
    first_error     TEXT NOT NULL,
    last_error      TEXT NOT NULL,
    error_signature TEXT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    last_failed_at  BIGINT NOT NULL,
    dead_at         BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    source          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'dead',
    status_at       BIGINT,
    status_by       TEXT,
    retried_as      TEXT,
    UNIQUE (job_id, attempts)
);
CREATE INDEX dead_jobs_by_status_time ON dead_jobs (status, dead_at DESC, id DESC);
CREATE INDEX dead_jobs_by_business ON dead_jobs (status, business_id, dead_at DESC);
CREATE INDEX dead_jobs_by_stage ON dead_jobs (status, stage, dead_at DESC);
CREATE INDEX dead_jobs_by_signature ON dead_jobs (status, error_signature);

CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    role     TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    before   TEXT,
    after    TEXT,
    detail   TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at DESC);

CREATE TABLE watermarks (
    source      TEXT NOT NULL,
    business_id BIGINT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (source, business_id)
);
