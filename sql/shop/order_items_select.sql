-- Items of the orders in the same window as orders_select.sql. Parameters: created_from, created_to.
-- Must return: order_id, sku, quantity, price_kop.
-- May return: name (the product name; EGON CreateNewOrder sends it as the item name).
SELECT i.order_id, i.sku, i.quantity, i.price_kop, p.name
FROM order_items i
JOIN orders o ON o.id = i.order_id
LEFT JOIN products p ON p.sku = i.sku
WHERE (o.created_at >= ? AND o.created_at < ?)
   OR o.status NOT IN ('completed', 'cancelled')
ORDER BY i.order_id, i.sku
