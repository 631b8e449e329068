-- Core tables: users, their sessions, and the token signing keys.
-- Every time is a BIGINT of Unix milliseconds in UTC, on SQLite and on
-- PostgreSQL alike, so comparisons and ordering are identical on both engines.

-- +goose Up
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    -- NULL while the session is live.
    revoked_at   BIGINT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,
    algorithm          TEXT NOT NULL,
    -- DER-encoded PKIX public key.
    public_key         BLOB NOT NULL,
    -- Private key sealed with AES-GCM under the master key.
    private_key_sealed BLOB NOT NULL,
    created_at         BIGINT NOT NULL,
    -- After retires_at the key no longer signs; NULL means not scheduled.
    retires_at         BIGINT NULL,
    -- After expires_at the key no longer verifies either; NULL means not scheduled.
    expires_at         BIGINT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP INDEX sessions_user_id;
DROP TABLE sessions;
DROP TABLE users;
