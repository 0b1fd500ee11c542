-- Issue 15: provider webhooks (`callops serve`).
-- webhook_endpoints: one row per business and provider. The verification secret (Retell API
-- key, Twilio auth token, Telnyx public key) is a reference only (env:NAME / file:/path),
-- like the other credentials (migration 0006). The rest is the endpoint's health, so a
-- webhook that went silent, or whose signatures started failing, is visible.
CREATE TABLE webhook_endpoints (
    business_id      INTEGER NOT NULL REFERENCES businesses(id),
    provider         TEXT NOT NULL,
    secret_ref       TEXT CHECK (secret_ref IS NULL OR secret_ref LIKE 'env:%' OR secret_ref LIKE 'file:%'),
    -- Last request that passed its signature check (any outcome), and its event type.
    last_event_at    INTEGER,
    last_event_type  TEXT,
    -- Last request of any kind and what was answered (created, duplicate, bad_signature, …).
    last_result      TEXT,
    last_result_at   INTEGER,
    last_reason      TEXT,
    accepted         INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (business_id, provider)
);

-- One row per provider event (Telnyx data.id, Twilio idempotency token, Retell call+event):
-- the unique key makes a redelivered or replayed event a no-op, whatever the concurrency.
CREATE TABLE webhook_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id      INTEGER NOT NULL,
    provider         TEXT NOT NULL,
    event_key        TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    provider_call_id TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    result           TEXT NOT NULL,
    call_id          INTEGER,
    UNIQUE (business_id, provider, event_key)
);

-- One row per provider call: what its events said so far (merged), and the call it became.
-- A Telnyx/Twilio call needs its hangup (numbers, times) and its recording (audio), which
-- arrive as separate events in any order; the call is created when both are in.
CREATE TABLE webhook_calls (
    business_id      INTEGER NOT NULL,
    provider         TEXT NOT NULL,
    provider_call_id TEXT NOT NULL,
    record           TEXT NOT NULL,
    call_id          INTEGER,
    first_at         INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (business_id, provider, provider_call_id)
);
CREATE INDEX webhook_calls_waiting ON webhook_calls (business_id, provider, first_at) WHERE call_id IS NULL;
