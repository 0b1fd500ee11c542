-- How many customers hold each name key, kept by triggers on customer_name_keys. The link
-- stage asks on every call whether a key is too common to read alone and how frequent a
-- surname is. Counting a common key's postings read its whole index range: 50,000 entries
-- for "lf:muller" at a million customers, 13-400 ms the first time each key was asked (then
-- cached for a minute per process). Here each key is one primary-key read, always exact.
CREATE TABLE customer_name_key_counts (
    business_id BIGINT NOT NULL,
    key         TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (business_id, key)
);
INSERT INTO customer_name_key_counts (business_id, key, n)
SELECT business_id, key, COUNT(*) FROM customer_name_keys GROUP BY business_id, key;

-- Statement-level: a bulk insert of 20,000 customers' keys updates each key's count once.
-- Keys in order, so two writers touching the same keys lock them in the same order.
CREATE OR REPLACE FUNCTION callops_name_keys_added() RETURNS trigger AS $$
BEGIN
    INSERT INTO customer_name_key_counts AS c (business_id, key, n)
    SELECT business_id, key, COUNT(*) FROM added GROUP BY business_id, key ORDER BY business_id, key
    ON CONFLICT (business_id, key) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER customer_name_keys_count_added AFTER INSERT ON customer_name_keys
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION callops_name_keys_added();

CREATE OR REPLACE FUNCTION callops_name_keys_removed() RETURNS trigger AS $$
BEGIN
    UPDATE customer_name_key_counts AS c SET n = c.n - r.n
    FROM (SELECT business_id, key, COUNT(*) AS n FROM removed GROUP BY business_id, key) AS r
    WHERE c.business_id = r.business_id AND c.key = r.key;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER customer_name_keys_count_removed AFTER DELETE ON customer_name_keys
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION callops_name_keys_removed();

GRANT SELECT ON customer_name_key_counts TO callops_viewer, callops_support;
GRANT INSERT, UPDATE ON customer_name_key_counts TO callops_support;
GRANT ALL ON customer_name_key_counts TO callops_admin;
