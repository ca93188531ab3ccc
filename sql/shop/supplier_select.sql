-- One supplier (IMSKLAD get_supplier). Parameter: id. Must return: id, name, inn, phone, email, address.
SELECT id, name, inn, phone, email, address FROM suppliers WHERE id = ?
