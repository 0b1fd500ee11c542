-- The overview counts calls waiting in review per business on every refresh. SQLite's
-- planner answers a GROUP BY from an index in group order, so it gets a partial index on
-- business_id (without it, it scans all of calls_by_business_state). Postgres appends
-- business_id to calls_review_queue instead (its planner would otherwise pick a separate
-- business_id index for the review page); calls_review_queue is rebuilt here too so both
-- dialects have the same index on the review queue.
DROP INDEX calls_review_queue;
CREATE INDEX calls_review_queue ON calls (review_priority DESC, state_since, business_id)
    WHERE state = 'review';
CREATE INDEX calls_review_by_business ON calls (business_id) WHERE state = 'review';
