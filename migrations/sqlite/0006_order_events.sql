-- The order events outbox (orders component writes, events component
-- delivers, README "Order events"): the SQLite twin of
-- migrations/0006_order_events.sql. Plain DDL split at line-ending
-- semicolons (see 0001).
-- One difference of shape: SQLite numbers only an INTEGER PRIMARY KEY by
-- itself, so `seq` is the primary key (AUTOINCREMENT: a number is never
-- handed out twice, even after the newest event was purged, as on MySQL)
-- and the event id, MySQL's primary key, has the unique index uq_order_events_id
-- in place of MySQL's uq_order_events_seq.

CREATE TABLE IF NOT EXISTS order_events (
    -- Delivery order: events go out oldest first.
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The stable event id, sent as Webhook-Id and in the body.
    id                  TEXT    NOT NULL,
    -- 'order.created' or 'order.cancelled'.
    type                TEXT    NOT NULL,
    order_id            TEXT    NOT NULL,
    -- The webhook body, exactly as signed and sent (the order as it was).
    payload             TEXT    NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    -- 'pending', 'delivered' or 'failed'.
    state               TEXT    NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    -- A pending event is not tried again before this time (backoff).
    next_attempt_at_ms  INTEGER NOT NULL,
    -- Set while one delivery run holds the event, so two runs never send it
    -- at once, a run that died leaves it to expire.
    claimed_until_ms    INTEGER NULL,
    delivered_at_ms     INTEGER NULL,
    -- The last attempt: the receiver's status, or why there was none.
    last_status         INTEGER NULL,
    last_error          TEXT    NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_order_events_id ON order_events (id);
-- Delivery runs read the pending events in order, the admin list filters
-- by state, newest first.
CREATE INDEX IF NOT EXISTS ix_order_events_state_seq ON order_events (state, seq);
CREATE INDEX IF NOT EXISTS ix_order_events_order ON order_events (order_id, seq);
