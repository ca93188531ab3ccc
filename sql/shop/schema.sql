-- Reference shop schema used by the demo and the tests. Your shop's schema will
-- differ: adapt the queries in sql/shop/*.sql to it instead of changing sverka.
CREATE TABLE IF NOT EXISTS products (
    sku VARCHAR(64) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    price_kop BIGINT NOT NULL,
    cost_kop BIGINT NOT NULL,
    weight_g BIGINT,
    ean VARCHAR(32),
    supplier_id VARCHAR(64),
    active INTEGER NOT NULL DEFAULT 1,
    width_mm BIGINT,
    height_mm BIGINT,
    length_mm BIGINT,
    color_id BIGINT,
    size VARCHAR(64),
    image_url VARCHAR(512)
);
CREATE TABLE IF NOT EXISTS stock (
    sku VARCHAR(64) PRIMARY KEY,
    quantity BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id VARCHAR(64) PRIMARY KEY,
    status VARCHAR(32) NOT NULL,
    paid INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    cancelled_at BIGINT,
    created_at BIGINT NOT NULL,
    shipped_at BIGINT,
    total_kop BIGINT NOT NULL,
    delivery_kop BIGINT NOT NULL DEFAULT 0,
    delivery_type BIGINT,
    customer_name VARCHAR(255) NOT NULL,
    email VARCHAR(255),
    phone VARCHAR(64),
    address VARCHAR(512),
    discount_kop BIGINT NOT NULL DEFAULT 0,
    courier BIGINT,
    pickup_point VARCHAR(64),
    post_code VARCHAR(16),
    city VARCHAR(255),
    street VARCHAR(255),
    house VARCHAR(64),
    room VARCHAR(64)
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id VARCHAR(64) NOT NULL,
    sku VARCHAR(64) NOT NULL,
    quantity BIGINT NOT NULL,
    price_kop BIGINT NOT NULL,
    PRIMARY KEY (order_id, sku)
);
CREATE TABLE IF NOT EXISTS marking_codes (
    code VARCHAR(255) PRIMARY KEY,
    sku VARCHAR(64) NOT NULL,
    used_by VARCHAR(64),
    used_at BIGINT
);
CREATE TABLE IF NOT EXISTS suppliers (
    id VARCHAR(64) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    inn VARCHAR(32),
    phone VARCHAR(64),
    email VARCHAR(255),
    address VARCHAR(512)
);
