-- The shop's stock per SKU, one row per SKU the shop sells.
-- Must return: sku (text), quantity (integer).
-- May return: cost_kop (integer, the cost price in kopecks; NULL = unknown):
-- compared with the CRM store's purchasePrice unless [stock] sync_cost = false.
SELECT p.sku AS sku, COALESCE(s.quantity, 0) AS quantity, p.cost_kop AS cost_kop
FROM products p
LEFT JOIN stock s ON s.sku = p.sku
WHERE p.active = 1
ORDER BY p.sku
