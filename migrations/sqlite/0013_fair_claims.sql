-- Claims that cost O(work): one claim per stage over the ready jobs of that stage
-- (jobs_lanes), and an idle worker sleeps until the next job is due (jobs_next).
CREATE INDEX jobs_lanes ON jobs (stage, business_id, run_at, id);
CREATE INDEX jobs_next ON jobs (stage, run_at);
DROP INDEX IF EXISTS jobs_by_stage_queue;
