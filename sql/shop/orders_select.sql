-- Shop orders in a window: created between the two bounds (unix ms), or not final yet.
-- Parameters, in order: created_from, created_to.
-- Must return: id, status, paid (0/1), cancelled (0/1), cancelled_at, created_at, shipped_at,
-- total_kop, delivery_kop, delivery_type, customer_name, email, phone, address.
-- May return (sent to IMSKLAD add_order where present): discount_kop, courier (IMSKLAD courier
-- id), pickup_point (carrier pickup point code), post_code, city, street, house, room (the
-- address in parts, `address_obj`).
SELECT id, status, paid, cancelled, cancelled_at, created_at, shipped_at, total_kop, delivery_kop,
       delivery_type, customer_name, email, phone, address,
       discount_kop, courier, pickup_point, post_code, city, street, house, room
FROM orders
WHERE (created_at >= ? AND created_at < ?)
   OR status NOT IN ('completed', 'cancelled')
ORDER BY id
