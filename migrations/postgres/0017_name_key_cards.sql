-- Each name-key row carries what scoring needs of its customer: the name when the customer
-- is live (not merged, not temporary; NULL otherwise) and the phone. The link stage then
-- reads candidates straight from the key postings, and on Postgres from the primary key's
-- leaf pages alone (INCLUDE): reading them by customer id instead cost one index descent
-- per candidate, about 6 us each, 25 ms for the 4,000 holders of a common full name at a
-- million customers. A trigger on customers keeps the copies exact whoever writes them.
ALTER TABLE customer_name_keys ADD COLUMN live_name TEXT, ADD COLUMN phone TEXT;
UPDATE customer_name_keys k
SET live_name = CASE WHEN c.merged_into IS NULL AND c.is_temporary = 0 THEN c.name END,
    phone = c.phone
FROM customers c WHERE c.id = k.customer_id;
ALTER TABLE customer_name_keys DROP CONSTRAINT customer_name_keys_pkey,
    ADD PRIMARY KEY (business_id, key, customer_id) INCLUDE (live_name, phone);

CREATE OR REPLACE FUNCTION callops_customer_card_changed() RETURNS trigger AS $$
BEGIN
    UPDATE customer_name_keys
    SET live_name = CASE WHEN NEW.merged_into IS NULL AND NEW.is_temporary = 0 THEN NEW.name END,
        phone = NEW.phone
    WHERE customer_id = NEW.id;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER customers_card_changed
    AFTER UPDATE OF name, phone, merged_into, is_temporary ON customers
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.phone IS DISTINCT FROM NEW.phone
          OR OLD.merged_into IS DISTINCT FROM NEW.merged_into
          OR OLD.is_temporary IS DISTINCT FROM NEW.is_temporary)
    EXECUTE FUNCTION callops_customer_card_changed();
