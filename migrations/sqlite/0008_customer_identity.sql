-- Issue 13: customers are unique per (business, normalized phone), so the link stage's
-- find-or-create is one INSERT … ON CONFLICT and two concurrent calls from one new number
-- make one customer; and name keys let the link stage find candidates by index instead of
-- reading up to 20,000 customers.

-- Fold existing duplicates into the oldest live customer with that number: calls and
-- leads move first, then the duplicates are marked merged (the review flow's own merge).
UPDATE calls SET customer_id = (
    SELECT MIN(c2.id) FROM customers c1
    JOIN customers c2 ON c2.business_id = c1.business_id AND c2.phone = c1.phone AND c2.merged_into IS NULL
    WHERE c1.id = calls.customer_id)
WHERE customer_id IN (
    SELECT c1.id FROM customers c1
    WHERE c1.phone IS NOT NULL AND c1.merged_into IS NULL AND EXISTS (
        SELECT 1 FROM customers c2 WHERE c2.business_id = c1.business_id AND c2.phone = c1.phone
        AND c2.merged_into IS NULL AND c2.id < c1.id));
UPDATE leads SET customer_id = (
    SELECT MIN(c2.id) FROM customers c1
    JOIN customers c2 ON c2.business_id = c1.business_id AND c2.phone = c1.phone AND c2.merged_into IS NULL
    WHERE c1.id = leads.customer_id)
WHERE customer_id IN (
    SELECT c1.id FROM customers c1
    WHERE c1.phone IS NOT NULL AND c1.merged_into IS NULL AND EXISTS (
        SELECT 1 FROM customers c2 WHERE c2.business_id = c1.business_id AND c2.phone = c1.phone
        AND c2.merged_into IS NULL AND c2.id < c1.id));
UPDATE customers SET merged_into = (
    SELECT MIN(c2.id) FROM customers c2
    WHERE c2.business_id = customers.business_id AND c2.phone = customers.phone AND c2.merged_into IS NULL)
WHERE phone IS NOT NULL AND merged_into IS NULL AND EXISTS (
    SELECT 1 FROM customers c2 WHERE c2.business_id = customers.business_id AND c2.phone = customers.phone
    AND c2.merged_into IS NULL AND c2.id < customers.id);

CREATE UNIQUE INDEX customers_unique_phone ON customers (business_id, phone)
    WHERE phone IS NOT NULL AND merged_into IS NULL;

-- Name keys (folded spelling, Cologne code, consonant skeleton per name word; see
-- domain::names::name_keys). `name_keys_version` says which key scheme a customer's rows
-- were built with; 0 = not yet (new rows from any writer, renamed customers): the link
-- stage keys those of a business before it looks up candidates.
ALTER TABLE customers ADD COLUMN name_keys_version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX customers_unkeyed ON customers (business_id, id)
    WHERE name_keys_version = 0 AND name IS NOT NULL;
CREATE TABLE customer_name_keys (
    business_id BIGINT NOT NULL,
    key         TEXT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (business_id, key, customer_id)
);
CREATE INDEX customer_name_keys_by_customer ON customer_name_keys (customer_id);
