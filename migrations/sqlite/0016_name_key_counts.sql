-- How many customers hold each name key, kept by triggers on customer_name_keys (see the
-- Postgres migration): one primary-key read per key instead of counting its postings.
CREATE TABLE customer_name_key_counts (
    business_id INTEGER NOT NULL,
    key         TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (business_id, key)
) WITHOUT ROWID;
INSERT INTO customer_name_key_counts (business_id, key, n)
SELECT business_id, key, COUNT(*) FROM customer_name_keys GROUP BY business_id, key;

-- Rows an `ON CONFLICT DO NOTHING` skips fire no trigger: only keys really added count.
CREATE TRIGGER customer_name_keys_count_added AFTER INSERT ON customer_name_keys
BEGIN
    INSERT INTO customer_name_key_counts (business_id, key, n) VALUES (NEW.business_id, NEW.key, 1)
    ON CONFLICT (business_id, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER customer_name_keys_count_removed AFTER DELETE ON customer_name_keys
BEGIN
    UPDATE customer_name_key_counts SET n = n - 1
    WHERE business_id = OLD.business_id AND key = OLD.key;
END;
