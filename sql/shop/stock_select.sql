-- The shop's stock per SKU, one row per SKU the shop sells.
-- Must return: sku (text), quantity (integer).
SELECT p.sku AS sku, COALESCE(s.quantity, 0) AS quantity
FROM products p
LEFT JOIN stock s ON s.sku = p.sku
WHERE p.active = 1
ORDER BY p.sku
