-- Shop orders for billing: shipped in the billing period, or created since the look-back start
-- (so a charge for an order shipped earlier still finds it).
-- Parameters, in order: shipped_from, shipped_to (unix ms, [from, to)), created_from (unix ms).
-- Must return: id, status, cancelled (0/1), cancelled_at (unix ms or NULL),
-- shipped_at (unix ms or NULL; when the order left the warehouse), delivery_type (IMSKLAD delivery
-- type id or NULL).
SELECT id, status, cancelled, cancelled_at, shipped_at, delivery_type
FROM orders
WHERE (shipped_at >= ? AND shipped_at < ?)
   OR created_at >= ?
ORDER BY id
