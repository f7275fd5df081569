-- The order events outbox (orders component writes, events component delivers;
-- see README "Order events").
-- A row is inserted in the same transaction as the order change it reports, so
-- an event exists exactly when its change committed. Delivery state lives on
-- the row: `pending` until a webhook answered 2xx (`delivered`), or until the
-- attempts ran out (`failed`; an admin may ask for redelivery).

CREATE TABLE IF NOT EXISTS order_events (
    -- The stable event id, sent as Webhook-Id and in the body.
    id                  CHAR(32)     NOT NULL,
    -- Delivery order: events go out oldest first.
    seq                 BIGINT       NOT NULL AUTO_INCREMENT,
    -- 'order.created' or 'order.cancelled'.
    type                VARCHAR(32)  NOT NULL,
    order_id            CHAR(32)     NOT NULL,
    -- The webhook body, exactly as signed and sent (the order as it was).
    payload             MEDIUMTEXT   NOT NULL,
    created_at_ms       BIGINT       NOT NULL,
    -- 'pending', 'delivered' or 'failed'.
    state               VARCHAR(16)  NOT NULL,
    attempts            INT          NOT NULL DEFAULT 0,
    -- A pending event is not tried again before this time (backoff).
    next_attempt_at_ms  BIGINT       NOT NULL,
    -- Set while one delivery run holds the event, so two runs never send it
    -- at once; a run that died leaves it to expire.
    claimed_until_ms    BIGINT       NULL,
    delivered_at_ms     BIGINT       NULL,
    -- The last attempt: the receiver's status, or why there was none.
    last_status         INT          NULL,
    last_error          VARCHAR(200) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_order_events_seq (seq),
    -- Delivery runs read the pending events in order; the admin list filters
    -- by state, newest first.
    KEY ix_order_events_state_seq (state, seq),
    KEY ix_order_events_order (order_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
