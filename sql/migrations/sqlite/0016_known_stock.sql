-- Stock delta mode (issue 17). Timestamps are Unix milliseconds.

-- What the CRM is known to hold per offer of the configured store: the last
-- full inventory read, plus every upload since that the CRM acknowledged.
CREATE TABLE stock_known (
    sku VARCHAR(255) PRIMARY KEY,
    offer_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    cost_kop BIGINT,
    updated_at BIGINT NOT NULL
);

-- When the known state was last replaced by a full read, and for which store
-- and offer key (another store or key makes it unknown).
CREATE TABLE stock_known_meta (
    name VARCHAR(32) PRIMARY KEY,
    store VARCHAR(255) NOT NULL,
    offer_key VARCHAR(16) NOT NULL,
    full_at BIGINT NOT NULL
);
