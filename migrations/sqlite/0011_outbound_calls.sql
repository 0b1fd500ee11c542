-- Issue 16: outbound AI calls for new leads.
--
-- outbound_settings: per business, whether new leads are called (auto_call), through which
-- voice-agent provider (simulated | retell | http), from which number, in which hours and
-- time zone, and at most how many calls an hour. Credentials by reference only, as in 0006.
-- voice_agents: a business's AI voice agents (the provider's agent id, an active flag).
-- lead_mappings: lead form/source/campaign → voice agent; exact first, then the longest
-- prefix, then a keyword contained in the form.
-- outbound_calls: one row per lead ever meant to be called. UNIQUE (business_id, lead_id)
-- is the dedup: concurrent notifies, redeliveries and workers cannot insert a second row,
-- so they cannot call a person twice. The row is also the work item the dispatcher claims
-- (status + due_at + claimed_until), and idempotency_key is what the provider is asked
-- with, so a worker killed between the provider's answer and its commit does not dial again.
-- leads.origin_call_id: the call that created the lead, so "is this lead new?" has the same
-- answer on a redelivered notify as on the first one.
CREATE TABLE outbound_settings (
    business_id    BIGINT PRIMARY KEY REFERENCES businesses(id),
    auto_call      BIGINT NOT NULL DEFAULT 0,
    provider       TEXT NOT NULL DEFAULT 'simulated',
    base_url       TEXT,
    key_ref        TEXT CHECK (key_ref IS NULL OR key_ref LIKE 'env:%' OR key_ref LIKE 'file:%'),
    auth_header    TEXT,
    body_template  TEXT,
    status_path    TEXT,
    from_number    TEXT,
    time_zone      TEXT NOT NULL DEFAULT 'UTC',
    hours          TEXT NOT NULL DEFAULT '',
    rate_per_hour  BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE voice_agents (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id        BIGINT NOT NULL REFERENCES businesses(id),
    name               TEXT NOT NULL,
    provider_agent_id  TEXT NOT NULL,
    active             BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE lead_mappings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id     BIGINT NOT NULL REFERENCES businesses(id),
    match_kind      TEXT NOT NULL CHECK (match_kind IN ('exact', 'prefix', 'keyword')),
    pattern         TEXT NOT NULL,
    voice_agent_id  BIGINT NOT NULL REFERENCES voice_agents(id),
    created_by      TEXT NOT NULL DEFAULT 'cli',
    created_at      BIGINT NOT NULL,
    UNIQUE (business_id, match_kind, pattern)
);

CREATE TABLE outbound_calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id       BIGINT NOT NULL REFERENCES businesses(id),
    lead_id           BIGINT NOT NULL REFERENCES leads(id),
    origin_call_id    BIGINT REFERENCES calls(id),
    form              TEXT,
    to_number         TEXT,
    lead_name         TEXT,
    voice_agent_id    BIGINT,
    provider          TEXT,
    status            TEXT NOT NULL,
    reason            TEXT NOT NULL DEFAULT '',
    due_at            BIGINT NOT NULL,
    claimed_until     BIGINT NOT NULL DEFAULT 0,
    claim_token       BIGINT NOT NULL DEFAULT 0,
    attempts          BIGINT NOT NULL DEFAULT 0,
    idempotency_key   TEXT NOT NULL,
    provider_call_id  TEXT,
    error             TEXT,
    requested_by      TEXT NOT NULL DEFAULT 'pipeline',
    dialed_at         BIGINT,
    ended_at          BIGINT,
    result_call_id    BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (business_id, lead_id)
);
CREATE INDEX outbound_calls_due ON outbound_calls (status, due_at);
CREATE INDEX outbound_calls_by_business ON outbound_calls (business_id, created_at);
CREATE INDEX outbound_calls_by_provider_id ON outbound_calls (provider_call_id);

ALTER TABLE leads ADD COLUMN origin_call_id BIGINT;
