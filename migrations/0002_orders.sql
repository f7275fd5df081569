-- Products, orders, order lines and idempotency keys (orders component).
-- Apply with: cargo run -p migrate -- <mysql://user:pass@host:port/db>  (see README).
-- Re-runnable: every statement is IF NOT EXISTS.
-- Times are BIGINT epoch milliseconds and money BIGINT cents: Spin's MySQL
-- interface cannot read DATETIME or DECIMAL.

CREATE TABLE IF NOT EXISTS products (
    id              CHAR(32)     NOT NULL,
    -- Case-sensitive (utf8mb4_bin), [A-Za-z0-9._-]{1,64}, checked by the component.
    sku             VARCHAR(64)  NOT NULL,
    name            VARCHAR(200) NOT NULL,
    price_cents     BIGINT       NOT NULL,
    stock           BIGINT       NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_products_sku (sku),
    -- The public list orders by (created_at_ms, id).
    KEY ix_products_created (created_at_ms, id),
    -- Defence in depth: the component never lets stock go negative, and the
    -- server refuses it too (MariaDB ≥ 10.2 and MySQL ≥ 8.0.16 enforce CHECK).
    CONSTRAINT ck_products_stock CHECK (stock >= 0),
    CONSTRAINT ck_products_price CHECK (price_cents >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- No foreign key to users: a deleted user's orders stay (the money happened)
-- and remain visible to admins.
CREATE TABLE IF NOT EXISTS orders (
    id              CHAR(32)     NOT NULL,
    user_id         CHAR(32)     NOT NULL,
    -- 'created' or 'cancelled'.
    status          VARCHAR(16)  NOT NULL,
    total_cents     BIGINT       NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    -- A user's list and the admin's list, newest first.
    KEY ix_orders_user_created (user_id, created_at_ms, id),
    KEY ix_orders_created (created_at_ms, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Lines copy the product's sku, name and price at placement, so an order
-- keeps showing what was bought at what price whatever happens to the product
-- later; hence no foreign key to products either.
CREATE TABLE IF NOT EXISTS order_lines (
    order_id          CHAR(32)     NOT NULL,
    line_no           INT          NOT NULL,
    product_id        CHAR(32)     NOT NULL,
    sku               VARCHAR(64)  NOT NULL,
    name              VARCHAR(200) NOT NULL,
    unit_price_cents  BIGINT       NOT NULL,
    quantity          INT          NOT NULL,
    line_total_cents  BIGINT       NOT NULL,
    PRIMARY KEY (order_id, line_no),
    KEY ix_order_lines_product (product_id),
    CONSTRAINT fk_order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Idempotency-Key reservations and the first answer given under each key.
-- The unique index is the whole protocol: a key is reserved by INSERT inside
-- the order's own transaction, so a concurrent duplicate blocks on the row
-- lock until the first commits (then replays its answer) or rolls back (then
-- proceeds itself). See functions/orders/src/mysql.rs.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id         CHAR(32)      NOT NULL,
    idem_key        VARCHAR(255)  NOT NULL,
    -- SHA-256 (hex) of the canonical request body.
    fingerprint     CHAR(64)      NOT NULL,
    response_status SMALLINT      NOT NULL,
    response_body   MEDIUMTEXT    NOT NULL,
    order_id        CHAR(32)      NULL,
    created_at_ms   BIGINT        NOT NULL,
    UNIQUE KEY uq_idempotency_user_key (user_id, idem_key),
    -- For purging keys past their 24 hours.
    KEY ix_idempotency_created (created_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
