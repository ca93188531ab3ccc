-- One shop order by id, for a billing line naming an order billing_orders_select.sql did not return.
-- Parameters: id.
-- Must return the same columns as billing_orders_select.sql: id, status, cancelled (0/1),
-- cancelled_at, shipped_at, delivery_type. No row: the order is unknown to the shop.
SELECT id, status, cancelled, cancelled_at, shipped_at, delivery_type
FROM orders
WHERE id = ?
