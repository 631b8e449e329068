-- +goose Up
-- Sign-in identities at external providers (social OAuth and enterprise
-- SSO) linked to accounts. provider is the provider id from
-- modules.auth.providers, or sso:<connection id>; subject is the
-- provider's stable user id. An account has at most one identity per
-- provider.
CREATE TABLE user_identities (
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email      TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject),
    UNIQUE (provider, user_id)
);
CREATE INDEX user_identities_user_id ON user_identities(user_id);

-- +goose Down
DROP TABLE user_identities;
