-- One marking code (IMSHOP scan). Parameter: code. Must return: code, sku, used_by (nullable), used_at (nullable).
SELECT code, sku, used_by, used_at FROM marking_codes WHERE code = ?
