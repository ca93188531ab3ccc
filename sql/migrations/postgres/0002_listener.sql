-- Callback listener: derived state of the events journal. Timestamps are Unix milliseconds.

-- The latest known warehouse state of each order, from IMSKLAD and EGON callbacks.
CREATE TABLE order_states (
    order_id VARCHAR(255) PRIMARY KEY,
    wms_order_id VARCHAR(64),
    wms_status BIGINT,
    status_at BIGINT,
    track VARCHAR(255),
    goods TEXT,
    is_canceled INTEGER NOT NULL DEFAULT 0,
    source VARCHAR(16) NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The latest warehouse stock per SKU (stock job, EGON InventoryStatusUpdate).
CREATE TABLE stock_snapshots (
    sku VARCHAR(255) PRIMARY KEY,
    wms_stock BIGINT NOT NULL,
    wms_reserved BIGINT NOT NULL,
    sellable BIGINT NOT NULL,
    source VARCHAR(16) NOT NULL,
    taken_at BIGINT NOT NULL
);

-- IMSHOP marking scans; one row per (user, code).
CREATE TABLE scans (
    id VARCHAR(64) PRIMARY KEY,
    user_id VARCHAR(255) NOT NULL,
    code VARCHAR(255) NOT NULL,
    status VARCHAR(16) NOT NULL,
    status_message TEXT,
    scanned_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    pushed_status VARCHAR(16),
    pushed_at BIGINT,
    push_error TEXT
);
CREATE UNIQUE INDEX scans_user_code ON scans (user_id, code);
CREATE INDEX scans_status ON scans (status, updated_at);
