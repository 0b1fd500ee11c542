-- Each name-key row carries what scoring needs of its customer (see the Postgres
-- migration): the name when the customer is live (not merged, not temporary; NULL
-- otherwise) and the phone, kept exact by a trigger on customers whoever writes them.
ALTER TABLE customer_name_keys ADD COLUMN live_name TEXT;
ALTER TABLE customer_name_keys ADD COLUMN phone TEXT;
UPDATE customer_name_keys
SET live_name = (SELECT CASE WHEN c.merged_into IS NULL AND c.is_temporary = 0 THEN c.name END
                 FROM customers c WHERE c.id = customer_name_keys.customer_id),
    phone = (SELECT c.phone FROM customers c WHERE c.id = customer_name_keys.customer_id);

CREATE TRIGGER customers_card_changed
    AFTER UPDATE OF name, phone, merged_into, is_temporary ON customers
    WHEN OLD.name IS NOT NEW.name OR OLD.phone IS NOT NEW.phone
         OR OLD.merged_into IS NOT NEW.merged_into OR OLD.is_temporary IS NOT NEW.is_temporary
BEGIN
    UPDATE customer_name_keys
    SET live_name = CASE WHEN NEW.merged_into IS NULL AND NEW.is_temporary = 0 THEN NEW.name END,
        phone = NEW.phone
    WHERE customer_id = NEW.id;
END;
