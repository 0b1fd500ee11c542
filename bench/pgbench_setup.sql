DROP TABLE IF EXISTS bench_calls;
CREATE TABLE bench_calls (
    id BIGSERIAL PRIMARY KEY,
    business_id BIGINT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
