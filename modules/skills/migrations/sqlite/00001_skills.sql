-- Skills Hub tables of the skills module: skills, their owners, versions,
-- installations, monthly publish counts and archive blobs. Times are
-- BIGINT Unix milliseconds (UTC), as in the core tables.

-- +goose Up
-- One row per skill name. folded_name is the name with '-', '_' and '.'
-- removed, case folded and look-alike letters mapped to Latin; its unique
-- index rejects a name that only differs from a taken one in those ways,
-- also when two first publishes race. The description, body (the start of
-- SKILL.md after the front matter, for search), license and metadata come
-- from current_version: latest_version when there is one, otherwise the
-- highest version. install_count is the number of users who have the skill
-- installed now.
CREATE TABLE skills (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT NOT NULL UNIQUE,
    folded_name         TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL,
    body                TEXT NOT NULL DEFAULT '',
    license             TEXT NOT NULL DEFAULT '',
    metadata            TEXT NOT NULL DEFAULT '{}',
    current_version     TEXT NOT NULL,
    -- Whether current_version is yanked, which happens when every version is.
    current_yanked      BOOLEAN NOT NULL DEFAULT FALSE,
    -- The highest version that is neither a pre-release nor yanked; NULL when none is.
    latest_version      TEXT NULL,
    deprecated          BOOLEAN NOT NULL DEFAULT FALSE,
    deprecation_message TEXT NOT NULL DEFAULT '',
    install_count       BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    -- The time of the last publish.
    updated_at          BIGINT NOT NULL
);
CREATE INDEX skills_install_count ON skills (install_count DESC, name);
CREATE INDEX skills_updated_at ON skills (updated_at DESC, name);

-- Full-text index over the name, the folded name, the description and the
-- body, kept in step with skills by the triggers below. remove_diacritics 2
-- makes "resume" match "Résumé".
CREATE VIRTUAL TABLE skills_fts USING fts5(
    name, folded_name, description, body,
    content = 'skills', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- +goose StatementBegin
CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills BEGIN
    INSERT INTO skills_fts (rowid, name, folded_name, description, body)
    VALUES (new.id, new.name, new.folded_name, new.description, new.body);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, name, folded_name, description, body)
    VALUES ('delete', old.id, old.name, old.folded_name, old.description, old.body);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER skills_fts_update AFTER UPDATE OF name, folded_name, description, body ON skills BEGIN
    INSERT INTO skills_fts (skills_fts, rowid, name, folded_name, description, body)
    VALUES ('delete', old.id, old.name, old.folded_name, old.description, old.body);
    INSERT INTO skills_fts (rowid, name, folded_name, description, body)
    VALUES (new.id, new.name, new.folded_name, new.description, new.body);
END;
-- +goose StatementEnd

-- The users who may publish versions, yank, deprecate and manage owners.
-- A skill whose last owner deleted the account has no rows here.
CREATE TABLE skill_owners (
    skill_id BIGINT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (skill_id, user_id)
);
CREATE INDEX skill_owners_user_id ON skill_owners (user_id);

-- Versions are immutable except for yanked. version is the semantic version
-- without build metadata (its identity), version_text as published. digest
-- is "sha256:<hex>" of the canonical tar and the key of skill_blobs; size is
-- the stored tar.gz in bytes, unpacked_size the sum of the file sizes.
CREATE TABLE skill_versions (
    skill_id      BIGINT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    version       TEXT NOT NULL,
    version_text  TEXT NOT NULL,
    prerelease    BOOLEAN NOT NULL,
    digest        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    unpacked_size BIGINT NOT NULL,
    files         INTEGER NOT NULL,
    description   TEXT NOT NULL,
    license       TEXT NOT NULL DEFAULT '',
    metadata      TEXT NOT NULL DEFAULT '{}',
    body          TEXT NOT NULL DEFAULT '',
    yanked        BOOLEAN NOT NULL DEFAULT FALSE,
    yanked_at     BIGINT NULL,
    -- NULL once the publisher's account is deleted.
    published_by  TEXT NULL,
    published_at  BIGINT NOT NULL,
    PRIMARY KEY (skill_id, version)
);
CREATE INDEX skill_versions_digest ON skill_versions (digest);
CREATE INDEX skill_versions_published_by ON skill_versions (published_by);

-- A user's installation of a skill: pinned_version, or the latest version
-- when NULL. The primary key counts each user once per skill.
CREATE TABLE skill_installations (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    skill_id       BIGINT NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    pinned_version TEXT NULL,
    installed_at   BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (user_id, skill_id)
);

-- Publishes per user and calendar month (UTC, "2006-01"), for the tier's
-- skill_publishes_per_month. The row is updated inside the publish
-- transaction, so parallel publishes cannot pass the limit together.
CREATE TABLE skill_publish_counts (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month     TEXT NOT NULL,
    publishes INTEGER NOT NULL,
    PRIMARY KEY (user_id, month)
);

-- Archive bytes (the canonical tar.gz) by digest, of the database blob store.
CREATE TABLE skill_blobs (
    digest     TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE skill_blobs;
DROP TABLE skill_publish_counts;
DROP TABLE skill_installations;
DROP TABLE skill_versions;
DROP TABLE skill_owners;
DROP TRIGGER skills_fts_update;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_insert;
DROP TABLE skills_fts;
DROP TABLE skills;
