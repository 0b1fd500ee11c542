-- The overview counts, on every refresh, calls in review and dead jobs per business. Over
-- calls_review_queue (priority, age, business) and dead_jobs_by_business (status, business,
-- time) those counts read wide index entries and hash them (~8 ms each at 10M calls /
-- 25k in review / 60k dead jobs, more on a loaded machine). Narrow partial indexes of just
-- the rows counted, already in business order, make each an index-only scan and a
-- streaming group (~2-3 ms). Their write cost is small: a row enters them only when a call
-- enters review or a job dies; calls_review_queue still serves the review page's order.
CREATE INDEX IF NOT EXISTS calls_review_by_business ON calls (business_id) WHERE state = 'review';
CREATE INDEX IF NOT EXISTS dead_jobs_dead_by_business ON dead_jobs (business_id) WHERE status = 'dead';
