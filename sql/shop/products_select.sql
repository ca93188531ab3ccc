-- The shop catalogue. Must return: sku, name, description (nullable), price_kop, cost_kop,
-- weight_g (nullable), ean (nullable), supplier_id (nullable).
SELECT sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id
FROM products
WHERE active = 1
ORDER BY sku
