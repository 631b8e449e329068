-- +goose Up
-- Device authorization requests (RFC 8628). device_code_hash is the hex
-- SHA-256 of the device code; user_code is the 8 letters without the dash.
-- status moves pending -> approved or denied -> consumed (tokens issued
-- once). Times are BIGINT unix milliseconds (UTC).
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code        TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'pending',
    user_id          TEXT NULL REFERENCES users(id) ON DELETE CASCADE,
    interval_seconds INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    last_poll_at     BIGINT NULL,
    decided_at       BIGINT NULL
);
CREATE INDEX device_codes_expires_at ON device_codes(expires_at);
CREATE INDEX device_codes_user_id ON device_codes(user_id);

-- +goose Down
DROP TABLE device_codes;
