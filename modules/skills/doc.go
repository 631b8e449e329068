// Package skills is the Skills Hub API section under /v1/skills, for users
// whose tier grants the skills_hub feature. It publishes skill archives (zip
// or tar.gz with SKILL.md and its YAML front matter at the root) and serves
// full-text search, versions with yanks and deprecation, owners and
// co-owners, and the installations of each user.
//
// An upload is unpacked in memory within the configured limits, checked
// entry by entry (archive.go) and stored as a canonical tar.gz whose
// SHA-256 identifies the content (buildCanonical). Archive bytes go
// through the BlobStore interface; the default stores them in the
// database on both engines (blobs.go). Names fold to a key without
// separators, case or look-alike letters (names.go), whose unique index
// keeps look-alikes of a taken name out. Search is engine-specific
// (search.go): FTS5 on SQLite, tsvector and pg_trgm on PostgreSQL.
//
// When an account is deleted, its installations, ownerships and publish
// counts go. Skills that the user owned alone stay published without an
// owner: downloadable and installable, but no user can publish, yank or
// deprecate them, and their names stay taken.
package skills
