-- Postgres gets narrow partial indexes for the overview's per-business counts here. SQLite
-- needs none: the review counts read calls_review_by_business (0004), and the dead-job counts
-- are a covering search of dead_jobs_by_business (status, business_id, …) already.
SELECT 1;
