-- +goose Up
-- Stripe customers and processed webhook events of the billing module.
-- Times are BIGINT unix milliseconds (UTC), as in the core tables. The
-- subscription state that grants a tier lives in entitlement_subscriptions,
-- which billing writes through the entitlements module.

-- One Stripe customer per user. A checkout claims the row first with
-- customer_id NULL, so that concurrent checkouts create one customer;
-- claimed_at lets a later checkout take over a claim whose holder died.
CREATE TABLE billing_customers (
    user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    customer_id     TEXT NULL UNIQUE,
    -- The user's latest Stripe subscription, from checkout or its events.
    subscription_id TEXT NULL,
    -- The end of the subscription's trial; NULL means none.
    trial_end       BIGINT NULL,
    claimed_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX billing_customers_subscription_id ON billing_customers (subscription_id);

-- Every webhook event applied, once: the primary key rejects a second
-- delivery, also a concurrent one, in the transaction of its effect.
CREATE TABLE billing_events (
    event_id       TEXT PRIMARY KEY,
    event_type     TEXT NOT NULL,
    -- The user the event concerned; empty when it named no known customer.
    user_id        TEXT NOT NULL DEFAULT '',
    stripe_created BIGINT NOT NULL,
    received_at    BIGINT NOT NULL
);
CREATE INDEX billing_events_user_id ON billing_events (user_id);

-- +goose Down
DROP TABLE billing_events;
DROP TABLE billing_customers;
