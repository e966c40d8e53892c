-- The orders of record: one row per order and event. The key makes a redelivered event (the
-- broker gave it again after the archive's answer was lost) a no-op, not a second row.
CREATE TABLE archived_orders (
    order_id     TEXT        NOT NULL,
    event        TEXT        NOT NULL CHECK (event IN ('placed', 'cancelled')),
    customer_id  TEXT        NOT NULL,
    -- What was charged (placed) or refunded (cancelled), in cents.
    amount_cents BIGINT      NOT NULL CHECK (amount_cents >= 0),
    -- Placed orders only.
    currency     TEXT,
    units        BIGINT,
    -- When it happened at the shop, milliseconds since the Unix epoch.
    at_ms        BIGINT      NOT NULL,
    archived_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, event)
);

CREATE INDEX archived_orders_customer ON archived_orders (customer_id);
