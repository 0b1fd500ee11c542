-- Issue 12: a deferral is read back. The console and `review list` leave deferred items out of
-- the default list until they are due and show them (with `H` / --deferred) with their reason,
-- who deferred them and until when; the reason used to live only in the call's trace.
ALTER TABLE calls ADD COLUMN review_deferred_reason TEXT;
ALTER TABLE calls ADD COLUMN review_deferred_by TEXT;
