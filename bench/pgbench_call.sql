-- The raw ceiling of one call's writes on this Postgres: an insert and four updates, each
-- its own commit (what a pipeline of five stages must do at the least). Run:
--   psql "$URL" -f bench/pgbench_setup.sql
--   pgbench -n -c 8 -j 2 -T 20 -f bench/pgbench_call.sql "$URL"
-- calls/s = the tps pgbench reports (one transaction here = one call).
\set biz random(1, 1000)
BEGIN;
INSERT INTO bench_calls (business_id, stage, state, updated_at) VALUES (:biz, 'sync', 'pending', now()) RETURNING id \gset
COMMIT;
UPDATE bench_calls SET stage = 'transcribe', updated_at = now() WHERE id = :id;
UPDATE bench_calls SET stage = 'analyze', updated_at = now() WHERE id = :id;
UPDATE bench_calls SET stage = 'link', updated_at = now() WHERE id = :id;
UPDATE bench_calls SET stage = 'notify', state = 'done', updated_at = now() WHERE id = :id;
