-- A signing key can be published before it signs: `nexus keys rotate` adds
-- a key that verifies and is in the JWKS at once, but signs only from
-- activates_at, so clients that cache the JWKS know it before its first token.

-- +goose Up
-- Unix milliseconds from which the key signs; NULL means from created_at.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NULL;

-- +goose Down
ALTER TABLE signing_keys DROP COLUMN activates_at;
