-- +goose Up
-- Hosted MCP servers and their per-server tokens, of the mcp module. Times
-- are BIGINT unix milliseconds (UTC), as in the core tables.

-- One row per provisioned server. config is the user's config as a JSON
-- object. secrets_sealed is a JSON object of secret names to values,
-- sealed with AES-256-GCM under the master key, with the server id as
-- additional data; NULL means no secrets. secret_names is a JSON array of
-- the names that are set, so listing them needs no decryption.
CREATE TABLE mcp_servers (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plugin         TEXT NOT NULL,
    name           TEXT NOT NULL,
    config         TEXT NOT NULL DEFAULT '{}',
    secrets_sealed BLOB NULL,
    secret_names   TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

-- Tokens that authenticate the MCP endpoint of one server. Only the hex
-- SHA-256 of a token is stored; the token itself is shown once.
CREATE TABLE mcp_tokens (
    id           TEXT PRIMARY KEY,
    server_id    TEXT NOT NULL REFERENCES mcp_servers (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NULL
);
CREATE INDEX mcp_tokens_server_id ON mcp_tokens (server_id);
CREATE INDEX mcp_tokens_user_id ON mcp_tokens (user_id);

-- +goose Down
DROP TABLE mcp_tokens;
DROP TABLE mcp_servers;
