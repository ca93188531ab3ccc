-- Protocol fidelity (issue 15). Timestamps are Unix milliseconds.

-- The last full IMSKLAD order sverka sent (add_order / update_order) or received
-- (the update_order callback): what a cancellation re-sends with is_canceled = 1.
CREATE TABLE order_documents (
    order_id VARCHAR(255) PRIMARY KEY,
    origin VARCHAR(16) NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The barcode of each IMSHOP scan exactly as IMSHOP sent it (history answers and
-- status pushes repeat it as `code`).
CREATE TABLE scan_barcodes (
    scan_id VARCHAR(64) PRIMARY KEY,
    barcode TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What sverka registered as RetailCRM warehouse module: a fingerprint of the
-- clientId, callPoints and URLs, so a change re-registers (the CRM may not echo clientId).
CREATE TABLE module_registrations (
    code VARCHAR(255) PRIMARY KEY,
    fingerprint VARCHAR(64) NOT NULL,
    registered_at BIGINT NOT NULL
);
