-- The shop catalogue. Must return: sku, name, description (nullable), price_kop, cost_kop,
-- weight_g (nullable), ean (nullable), supplier_id (nullable).
-- May return (each nullable; what is returned goes to IMSKLAD add_good / update_good and the
-- get_good callback, so the WMS copy is not wiped): width_mm, height_mm, length_mm, color_id
-- (IMSKLAD's colour table), size, image_url.
SELECT sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id,
       width_mm, height_mm, length_mm, color_id, size, image_url
FROM products
WHERE active = 1
ORDER BY sku
