-- The overview counts dead jobs per business on every refresh: a narrow partial index of
-- the dead ones, in business order, makes it an index-only scan. (calls_review_by_business,
-- for the review counts, exists since 0004.)
CREATE INDEX IF NOT EXISTS dead_jobs_dead_by_business ON dead_jobs (business_id) WHERE status = 'dead';
