-- Sets one SKU's quantity, only if the row still holds the quantity sverka read
-- (compare-and-set: a row changed during the run is left alone and reported
-- `changed_during_run`). Parameters, in order: quantity, updated_at (unix ms),
-- sku, the quantity sverka read. Run once per corrected SKU, all in one transaction.
UPDATE stock SET quantity = ?, updated_at = ? WHERE sku = ? AND quantity = ?
