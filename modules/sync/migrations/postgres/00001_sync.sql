-- +goose Up
-- Collections of encrypted items, their change sequence, key envelopes,
-- devices and idempotency records, of the sync module. Times are BIGINT
-- unix milliseconds (UTC), as in the core tables. Payloads, envelopes and
-- public keys are the decoded bytes that clients sent as base64; the server
-- never reads them.

-- One row per user with sync data. Every write transaction locks this row
-- first, so a user's writes run one at a time and their sequence numbers
-- become visible in commit order. seq is the last sequence number given
-- out, bytes_used and item_count cover live items. purged_seq is the
-- highest sequence number of a purged tombstone: a feed cursor below it may
-- have missed a deletion. version_floor is the highest version of a purged
-- tombstone, so an item created afterwards starts above every version that
-- a client may still hold.
CREATE TABLE sync_users (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL DEFAULT 0,
    bytes_used    BIGINT NOT NULL DEFAULT 0,
    item_count    BIGINT NOT NULL DEFAULT 0,
    purged_seq    BIGINT NOT NULL DEFAULT 0,
    version_floor BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

-- Items and tombstones. A tombstone has deleted set, no payload and size 0.
-- seq is the sequence number of the item's last change, unique per user.
CREATE TABLE sync_items (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    payload    BYTEA NULL,
    size       BIGINT NOT NULL DEFAULT 0,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, collection, item_id)
);
CREATE UNIQUE INDEX sync_items_feed ON sync_items (user_id, collection, seq);
CREATE INDEX sync_items_tombstones ON sync_items (updated_at) WHERE deleted;

-- Wrapped key envelopes, one version each, replaced on rotation.
CREATE TABLE sync_keys (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id     TEXT NOT NULL,
    version    BIGINT NOT NULL,
    envelope   BYTEA NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_id)
);

-- A user's devices with their public keys.
CREATE TABLE sync_devices (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- The first successful answer to a mutation with an Idempotency-Key,
-- written in the mutation's transaction. request_hash is the SHA-256 of the
-- method, path, precondition headers and body.
CREATE TABLE sync_idempotency (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    status          INTEGER NOT NULL,
    etag            TEXT NOT NULL DEFAULT '',
    body            BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX sync_idempotency_created_at ON sync_idempotency (created_at);

-- +goose Down
DROP TABLE sync_idempotency;
DROP TABLE sync_devices;
DROP TABLE sync_keys;
DROP TABLE sync_items;
DROP TABLE sync_users;
