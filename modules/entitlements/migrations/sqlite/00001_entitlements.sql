-- +goose Up
-- Subscriptions, trials, operator overrides and their history, of the
-- entitlements module. Times are BIGINT unix milliseconds (UTC), as in the
-- core tables.

-- One row per user with a Stripe subscription, written by billing. status
-- is Stripe's subscription status; the entitlements resolver maps it to a
-- tier. stripe_created is the creation time of the Stripe event last
-- applied to the row, so older events arriving late can be skipped.
CREATE TABLE entitlement_subscriptions (
    user_id              TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier                 TEXT NOT NULL,
    status               TEXT NOT NULL,
    current_period_end   BIGINT NOT NULL,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    -- The end of the grace period of a past_due subscription; NULL means none.
    grace_until          BIGINT NULL,
    stripe_created       BIGINT NOT NULL DEFAULT 0,
    updated_at           BIGINT NOT NULL
);

-- The one trial an account ever gets: the primary key rejects a second.
CREATE TABLE entitlement_trials (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier       TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    -- Set to ends_at once the expiry timer has ended the trial.
    ended_at   BIGINT NULL
);
CREATE INDEX entitlement_trials_open ON entitlement_trials (ends_at) WHERE ended_at IS NULL;

-- An operator's override of one user: a tier, extra features or both.
-- tier is empty when the override grants features only; features is a JSON
-- array of feature names. ended_at is set when an operator clears the
-- override or when it expires.
CREATE TABLE entitlement_overrides (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tier       TEXT NOT NULL DEFAULT '',
    features   TEXT NOT NULL DEFAULT '[]',
    expires_at BIGINT NULL,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at   BIGINT NULL
);

-- Every change of a user's trial or override, append-only: the code
-- deletes rows only with the account. detail is a JSON object.
CREATE TABLE entitlement_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '{}',
    reason     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX entitlement_history_user_id ON entitlement_history (user_id, id);

-- +goose Down
DROP TABLE entitlement_history;
DROP TABLE entitlement_overrides;
DROP TABLE entitlement_trials;
DROP TABLE entitlement_subscriptions;
