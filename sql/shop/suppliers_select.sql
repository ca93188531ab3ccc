-- All suppliers (IMSKLAD get_suppliers). Must return: id, name, inn, phone, email, address.
SELECT id, name, inn, phone, email, address FROM suppliers ORDER BY id
