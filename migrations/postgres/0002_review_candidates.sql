-- Ranked candidate customers for calls in manual review (JSON), and the caller's intent.
ALTER TABLE calls ADD COLUMN review_candidates TEXT;
ALTER TABLE calls ADD COLUMN lead_filter_skipped BIGINT NOT NULL DEFAULT 0;
CREATE INDEX leads_by_external ON leads (business_id, external_id);
