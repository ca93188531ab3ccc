-- Sets one SKU's quantity. Parameters, in order: quantity, updated_at (unix ms), sku.
-- Run once per corrected SKU, all in one transaction.
UPDATE stock SET quantity = ?, updated_at = ? WHERE sku = ?
