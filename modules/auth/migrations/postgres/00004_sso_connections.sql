-- +goose Up
-- Enterprise SSO connections, one per email domain, managed by operators.
-- kind is oidc or saml. The OIDC client secret is sealed with the master
-- key; saml_metadata is the identity provider's metadata XML. A domain
-- with require_sso = 1 cannot sign in with a password.
CREATE TABLE sso_connections (
    id                   TEXT PRIMARY KEY,
    domain               TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL,
    name                 TEXT NOT NULL,
    require_sso          INTEGER NOT NULL DEFAULT 0,
    oidc_issuer          TEXT NOT NULL DEFAULT '',
    oidc_client_id       TEXT NOT NULL DEFAULT '',
    oidc_secret_sealed   BYTEA NULL,
    saml_metadata        TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

-- +goose Down
DROP TABLE sso_connections;
