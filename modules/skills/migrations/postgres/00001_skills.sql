-- Skills Hub tables of the skills module: skills, their owners, versions,
-- installations, monthly publish counts and archive blobs. Times are
-- BIGINT Unix milliseconds (UTC), as in the core tables.
--
-- Search uses the pg_trgm and unaccent extensions, created in schema public
-- and always called schema-qualified, so the module works whatever the
-- search_path of its connections is. Extensions belong to the database,
-- not to a schema, so the advisory lock keeps two migrations (of two
-- schemas, or two nodes) from creating them at the same time.

-- +goose Up
SELECT pg_advisory_xact_lock(8357001);
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- unaccent() is STABLE because it reads its dictionary through the
-- search_path. This wrapper names the dictionary, so it may be IMMUTABLE
-- and serve in the generated search column.
-- +goose StatementBegin
CREATE FUNCTION skills_unaccent(value TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, value) $$;
-- +goose StatementEnd

-- One row per skill name. folded_name is the name with '-', '_' and '.'
-- removed, case folded and look-alike letters mapped to Latin; its unique
-- index rejects a name that only differs from a taken one in those ways,
-- also when two first publishes race. The description, body (the start of
-- SKILL.md after the front matter, for search), license and metadata come
-- from current_version: latest_version when there is one, otherwise the
-- highest version. install_count is the number of users who have the skill
-- installed now.
CREATE TABLE skills (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    updated_at          BIGINT NOT NULL,
    -- Accent- and case-insensitive words of the name, the description and
    -- the body, for matching. strip() drops positions and weights, which
    -- only ranking needs, to keep the vector small: a sequential scan
    -- reads it for every row.
    search_vector       TSVECTOR GENERATED ALWAYS AS (strip(
        to_tsvector('simple'::regconfig, skills_unaccent(name || ' ' || folded_name)) ||
        to_tsvector('simple'::regconfig, skills_unaccent(description)) ||
        to_tsvector('simple'::regconfig, skills_unaccent(body))
    )) STORED,
    -- The words of the name (weight A) and the description (weight B) with
    -- their positions, for ranking.
    rank_vector         TSVECTOR GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, skills_unaccent(name || ' ' || folded_name)), 'A') ||
        setweight(to_tsvector('simple'::regconfig, skills_unaccent(description)), 'B')
    ) STORED
);
CREATE INDEX skills_install_count ON skills (install_count DESC, name);
CREATE INDEX skills_updated_at ON skills (updated_at DESC, name);
CREATE INDEX skills_search_vector ON skills USING gin (search_vector);
-- Trigram index for typo-tolerant matches on the name.
CREATE INDEX skills_name_trigram ON skills USING gin (name public.gin_trgm_ops);

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
    data       BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE skill_blobs;
DROP TABLE skill_publish_counts;
DROP TABLE skill_installations;
DROP TABLE skill_versions;
DROP TABLE skill_owners;
DROP TABLE skills;
DROP FUNCTION skills_unaccent(TEXT);
