-- One product by SKU (IMSKLAD get_good callback). Parameter: sku. Columns as products_select.sql.
SELECT sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id,
       width_mm, height_mm, length_mm, color_id, size, image_url
FROM products
WHERE sku = ?
