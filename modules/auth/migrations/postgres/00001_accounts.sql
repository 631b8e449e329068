-- +goose Up
-- Accounts, refresh tokens and one-time email tokens of the auth module.
-- Times are BIGINT unix milliseconds (UTC), as in the core tables.
ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email_verified_at BIGINT NULL;
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN locked_until BIGINT NULL;
ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN device_name TEXT NOT NULL DEFAULT '';

-- token_hash is the hex SHA-256 of the opaque refresh token. A used token
-- keeps its successor pair, sealed by the master key, for the reuse window.
CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT NULL,
    successor_sealed BYTEA NULL
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);

-- purpose is verify_email or reset_password.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NULL
);
CREATE INDEX email_tokens_user_id ON email_tokens(user_id, purpose);

-- +goose Down
DROP TABLE email_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE sessions DROP COLUMN device_name;
ALTER TABLE users DROP COLUMN updated_at;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN role;
ALTER TABLE users DROP COLUMN display_name;
ALTER TABLE users DROP COLUMN email_verified_at;
ALTER TABLE users DROP COLUMN password_hash;
