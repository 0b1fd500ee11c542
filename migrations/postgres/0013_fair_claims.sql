-- Claims that cost O(work): one claim per stage walks only the businesses that have jobs of
-- that stage (a loose index scan over jobs_lanes), and an idle worker sleeps until the
-- next job is due (jobs_next) or a commit notifies it (LISTEN callops_jobs).
CREATE INDEX jobs_lanes ON jobs (stage, business_id, run_at, id);
CREATE INDEX jobs_next ON jobs (stage, run_at);
-- Superseded by the two above: nothing filters jobs by (stage, queue) any more.
DROP INDEX IF EXISTS jobs_by_stage_queue;

-- One notification per inserting statement and stage (payload = stage), delivered at
-- commit: idle database-broker workers wake at once instead of polling.
CREATE OR REPLACE FUNCTION callops_notify_jobs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('callops_jobs', s.stage) FROM (SELECT DISTINCT stage FROM new_jobs) s;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION callops_notify_jobs();

-- The outbox relay sleeps the same way (RabbitMQ deployments).
CREATE OR REPLACE FUNCTION callops_notify_outbox() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('callops_outbox', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION callops_notify_outbox();
