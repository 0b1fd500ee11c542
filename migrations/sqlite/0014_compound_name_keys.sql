-- Issue 14: compound name keys. A full-name lookup ("Anna Müller") used to intersect the
-- posting list of a surname key with that of a first-name key; with a million customers
-- both lists are tens of thousands long. Each customer now also holds one key per
-- combination of a surname key and a first-name key ("cf:muller+f:anna", "cp:657+p:06",
-- …; a one-word name pairs its keys with "n1"), so the lookup reads one short list.
-- A name with more than 64 combinations (scripts whose words have many consonant
-- skeletons) holds an overflow key per surname key instead ("cf:cohen+*"), which the
-- lookup drives from before probing the first-name keys: nobody is left out.
-- See domain::names::compound_keys; this builds the same keys from the stored per-word
-- keys ('l…' surname, 'f…' first name, 'n1'). name_keys_version 2 = per-word keys plus
-- compound keys; customers below 2 (0 = never keyed or renamed; 1 = keyed by a build
-- before this one) are (re-)keyed by Store::ensure_name_keys before any name lookup.

CREATE TEMPORARY TABLE compound_key_counts AS
SELECT k.customer_id,
       SUM(CASE WHEN k.key LIKE 'l%' THEN 1 ELSE 0 END) AS nl,
       SUM(CASE WHEN k.key LIKE 'f%' OR k.key = 'n1' THEN 1 ELSE 0 END) AS nf
FROM customer_name_keys k JOIN customers c ON c.id = k.customer_id
WHERE c.name_keys_version = 1
GROUP BY k.customer_id;

INSERT INTO customer_name_keys (business_id, key, customer_id)
SELECT a.business_id,
       'c' || substr(a.key, 2) || '+' || CASE WHEN b.key = 'n1' THEN 'n1' ELSE substr(b.key, 2) END,
       a.customer_id
FROM compound_key_counts n
JOIN customer_name_keys a ON a.customer_id = n.customer_id AND a.key LIKE 'l%'
JOIN customer_name_keys b ON b.customer_id = n.customer_id AND (b.key LIKE 'f%' OR b.key = 'n1')
WHERE n.nl * n.nf <= 64
ON CONFLICT DO NOTHING;

INSERT INTO customer_name_keys (business_id, key, customer_id)
SELECT a.business_id, 'c' || substr(a.key, 2) || '+*', a.customer_id
FROM compound_key_counts n
JOIN customer_name_keys a ON a.customer_id = n.customer_id AND a.key LIKE 'l%'
WHERE n.nl * n.nf > 64
ON CONFLICT DO NOTHING;

DROP INDEX customers_unkeyed;
UPDATE customers SET name_keys_version = 2 WHERE name_keys_version = 1;
CREATE INDEX customers_unkeyed ON customers (business_id, id)
    WHERE name_keys_version < 2 AND name IS NOT NULL;
DROP TABLE compound_key_counts;
