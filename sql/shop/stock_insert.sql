-- Creates the stock row of a SKU that has none yet (run when stock_update touched no row).
-- Parameters, in order: sku, quantity, updated_at (unix ms).
INSERT INTO stock (sku, quantity, updated_at) VALUES (?, ?, ?)
