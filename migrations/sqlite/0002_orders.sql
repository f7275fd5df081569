-- Products, orders, order lines and idempotency keys (orders component): the
-- SQLite twin of migrations/0002_orders.sql, same tables, columns, index and
-- constraint names. Plain DDL split at line-ending semicolons (see 0001).
-- Times are INTEGER epoch milliseconds and money INTEGER cents, as on MySQL.

CREATE TABLE IF NOT EXISTS products (
    id              TEXT    NOT NULL,
    -- Case-sensitive, [A-Za-z0-9._-]{1,64}, checked by the component. The
    -- length is bound here too, as MySQL's VARCHAR(64) bounds it there.
    sku             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    price_cents     INTEGER NOT NULL,
    stock           INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_products_sku_length CHECK (length(sku) <= 64),
    -- Defence in depth: the component never lets stock go negative, and the
    -- database refuses it too.
    CONSTRAINT ck_products_stock CHECK (stock >= 0),
    CONSTRAINT ck_products_price CHECK (price_cents >= 0)
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_products_sku ON products (sku);
-- The public list orders by (created_at_ms, id).
CREATE INDEX IF NOT EXISTS ix_products_created ON products (created_at_ms, id);

-- No foreign key to users: a deleted user's orders stay (the money happened)
-- and remain visible to admins.
CREATE TABLE IF NOT EXISTS orders (
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    -- 'created' or 'cancelled'.
    status          TEXT    NOT NULL,
    total_cents     INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (id)
);
-- A user's list and the admin's list, newest first.
CREATE INDEX IF NOT EXISTS ix_orders_user_created ON orders (user_id, created_at_ms, id);
CREATE INDEX IF NOT EXISTS ix_orders_created ON orders (created_at_ms, id);

-- Lines copy the product's sku, name and price at placement, so an order
-- keeps showing what was bought at what price whatever happens to the product
-- later, hence no foreign key to products either.
CREATE TABLE IF NOT EXISTS order_lines (
    order_id          TEXT    NOT NULL,
    line_no           INTEGER NOT NULL,
    product_id        TEXT    NOT NULL,
    sku               TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    unit_price_cents  INTEGER NOT NULL,
    quantity          INTEGER NOT NULL,
    line_total_cents  INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT fk_order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_order_lines_product ON order_lines (product_id);

-- Idempotency-Key reservations and the first answer given under each key.
-- The unique index is the whole protocol: a key is reserved by INSERT inside
-- the order's own transaction. On SQLite that transaction holds the
-- database's write lock (BEGIN IMMEDIATE), so a concurrent duplicate waits
-- for it to end, then finds the key (and replays its answer) or not.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id         TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    -- SHA-256 (hex) of the canonical request body.
    fingerprint     TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT    NOT NULL,
    order_id        TEXT    NULL,
    created_at_ms   INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_idempotency_user_key ON idempotency_keys (user_id, idem_key);
-- For purging keys past their 24 hours.
CREATE INDEX IF NOT EXISTS ix_idempotency_created ON idempotency_keys (created_at_ms);
