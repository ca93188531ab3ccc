-- Keys that are what they look like (issue 13): SKUs, order ids, WMS ids,
-- tracks, users and correction keys compare byte-exactly, so `SKU-a` and
-- `SKU-A` are two SKUs (the server's default collation is case- and
-- accent-insensitive). PostgreSQL and SQLite compare bytes already.

ALTER TABLE id_map
    MODIFY partner_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY wms_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE stock_snapshots
    MODIFY sku VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE order_states
    MODIFY order_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    MODIFY wms_order_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    MODIFY track VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE scans
    MODIFY user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE corrections
    MODIFY item_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
