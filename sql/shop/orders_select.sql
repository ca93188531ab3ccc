-- Shop orders in a window: created between the two bounds (unix ms), or not final yet.
-- Parameters, in order: created_from, created_to.
-- Must return: id, status, paid (0/1), cancelled (0/1), cancelled_at, created_at, shipped_at,
-- total_kop, delivery_kop, delivery_type, customer_name, email, phone, address.
SELECT id, status, paid, cancelled, cancelled_at, created_at, shipped_at, total_kop, delivery_kop,
       delivery_type, customer_name, email, phone, address
FROM orders
WHERE (created_at >= ? AND created_at < ?)
   OR status NOT IN ('completed', 'cancelled')
ORDER BY id
