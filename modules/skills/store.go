package skills

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// Errors of the store.
var (
	errNotFound    = errors.New("not found")
	errNotOwner    = errors.New("the caller is not an owner of the skill")
	errLastOwner   = errors.New("a skill keeps at least one owner")
	errUserUnknown = errors.New("no user with this id")
	// errRace is a unique violation from a concurrent write. The operation
	// runs again and then reads the other write.
	errRace = errors.New("concurrent write")
)

// maxPublishAttempts bounds the runs of a publish that lost a race.
const maxPublishAttempts = 3

// nameTakenError is a publish under a name that is taken, or that folds
// to the same key as a taken name, by a skill that the caller does not own.
type nameTakenError struct {
	SimilarTo string
}

func (e *nameTakenError) Error() string { return "the name is taken by the skill " + e.SimilarTo }

// quotaError is a publish over the caller's publishes per month.
type quotaError struct {
	Limit, Used int
}

func (e *quotaError) Error() string {
	return fmt.Sprintf("%d of %d publishes this month used", e.Used, e.Limit)
}

// versionConflictError is a publish of an existing version with other content.
type versionConflictError struct {
	Existing versionRow
}

func (e *versionConflictError) Error() string {
	return "version " + e.Existing.Version + " exists with the digest " + e.Existing.Digest
}

// skillRow is a row of skills.
type skillRow struct {
	ID                 int64
	Name               string
	Description        string
	License            string
	Metadata           map[string]string
	CurrentVersion     string
	CurrentYanked      bool
	LatestVersion      string
	Deprecated         bool
	DeprecationMessage string
	InstallCount       int64
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// versionRow is a row of skill_versions with its skill's name.
type versionRow struct {
	SkillID      int64
	Skill        string
	Version      string
	VersionText  string
	Prerelease   bool
	Digest       string
	Size         int64
	UnpackedSize int64
	Files        int
	Description  string
	License      string
	Metadata     map[string]string
	Body         string
	Yanked       bool
	YankedAt     *time.Time
	PublishedAt  time.Time
}

// querier is the part of *sql.DB and *sql.Tx that the store uses.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// store is the module's SQL. Search is engine-specific (search.go); the
// rest is the same on both engines.
type store struct {
	db *storage.DB
}

// inTx runs fn in a transaction and commits when it returns nil.
func inTx(ctx context.Context, db *storage.DB, step string, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", step, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", step, err)
	}
	return nil
}

// publishInput is one version to publish.
type publishInput struct {
	UserID       string
	Manifest     manifest
	Version      skillVersion
	VersionText  string
	Digest       string
	Size         int64
	UnpackedSize int64
	Files        int
	Now          time.Time
	// MonthlyLimit is the caller's tier's skill_publishes_per_month.
	MonthlyLimit int
}

// publish records a new version and counts it against the caller's
// monthly publishes, in one transaction. It returns created=false with
// the stored version when the same version exists with the same digest,
// which does not count. Errors: *nameTakenError, *quotaError,
// *versionConflictError.
func (s *store) publish(ctx context.Context, in publishInput) (row versionRow, created bool, err error) {
	for range maxPublishAttempts {
		err = inTx(ctx, s.db, "publish "+in.Manifest.Name, func(tx *sql.Tx) error {
			row, created, err = s.publishOnce(ctx, tx, in)
			return err
		})
		if !errors.Is(err, errRace) {
			return row, created, err
		}
	}
	return versionRow{}, false, fmt.Errorf("publish %s %s: lost %d races in a row", in.Manifest.Name, in.Version.Key, maxPublishAttempts)
}

func (s *store) publishOnce(ctx context.Context, tx *sql.Tx, in publishInput) (versionRow, bool, error) {
	skillID, err := s.claimName(ctx, tx, in)
	if err != nil {
		return versionRow{}, false, err
	}

	existing, err := loadVersion(ctx, tx, `v.skill_id = $1 AND v.version = $2`, skillID, in.Version.Key)
	switch {
	case err == nil && existing.Digest == in.Digest:
		return existing, false, nil
	case err == nil:
		return versionRow{}, false, &versionConflictError{Existing: existing}
	case !errors.Is(err, errNotFound):
		return versionRow{}, false, err
	}

	if err := countPublish(ctx, tx, in.UserID, in.Now, in.MonthlyLimit); err != nil {
		return versionRow{}, false, err
	}

	m := in.Manifest
	_, err = tx.ExecContext(ctx,
		`INSERT INTO skill_versions (skill_id, version, version_text, prerelease, digest, size, unpacked_size,
		     files, description, license, metadata, body, published_by, published_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		skillID, in.Version.Key, in.VersionText, in.Version.Prerelease(), in.Digest, in.Size, in.UnpackedSize,
		in.Files, m.Description, m.License, encodeMetadata(m.Metadata), indexedBody(m.Body), in.UserID, in.Now.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return versionRow{}, false, errRace
	}
	if err != nil {
		return versionRow{}, false, fmt.Errorf("insert version %s of %s: %w", in.Version.Key, m.Name, err)
	}

	if err := refreshSummary(ctx, tx, skillID, &in.Now); err != nil {
		return versionRow{}, false, err
	}
	row, err := loadVersion(ctx, tx, `v.skill_id = $1 AND v.version = $2`, skillID, in.Version.Key)
	return row, true, err
}

// claimName returns the id of the caller's skill of that name, creating
// the skill with the caller as its owner on its first publish.
func (s *store) claimName(ctx context.Context, tx *sql.Tx, in publishInput) (int64, error) {
	name := in.Manifest.Name
	var skillID int64
	var existing string
	err := tx.QueryRowContext(ctx, `SELECT id, name FROM skills WHERE folded_name = $1`, foldName(name)).Scan(&skillID, &existing)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, fmt.Errorf("look up skill name %s: %w", name, err)
	case existing != name:
		return 0, &nameTakenError{SimilarTo: existing}
	default:
		owner, err := isOwner(ctx, tx, skillID, in.UserID)
		if err != nil {
			return 0, err
		}
		if !owner {
			return 0, &nameTakenError{SimilarTo: existing}
		}
		return skillID, nil
	}

	m := in.Manifest
	err = tx.QueryRowContext(ctx,
		`INSERT INTO skills (name, folded_name, description, body, license, metadata, current_version, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
		name, foldName(name), m.Description, indexedBody(m.Body), m.License, encodeMetadata(m.Metadata),
		in.Version.Key, in.Now.UnixMilli()).Scan(&skillID)
	if storage.IsUniqueViolation(err) {
		return 0, errRace
	}
	if err != nil {
		return 0, fmt.Errorf("insert skill %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO skill_owners (skill_id, user_id, added_at) VALUES ($1, $2, $3)`,
		skillID, in.UserID, in.Now.UnixMilli()); err != nil {
		return 0, fmt.Errorf("insert first owner of %s: %w", name, err)
	}
	return skillID, nil
}

// monthKey is the calendar month of t in UTC, the key of skill_publish_counts.
func monthKey(t time.Time) string { return t.UTC().Format("2006-01") }

// countPublish adds one publish to the user's count of the month of now,
// unless the count has reached limit. The conditional upsert locks the
// row, so parallel publishes of one user are counted one after the other.
func countPublish(ctx context.Context, tx *sql.Tx, userID string, now time.Time, limit int) error {
	month := monthKey(now)
	if limit > 0 {
		result, err := tx.ExecContext(ctx,
			`INSERT INTO skill_publish_counts (user_id, month, publishes) VALUES ($1, $2, 1)
			 ON CONFLICT (user_id, month) DO UPDATE SET publishes = skill_publish_counts.publishes + 1
			 WHERE skill_publish_counts.publishes < $3`,
			userID, month, limit)
		if err != nil {
			return fmt.Errorf("count publish of user %s in %s: %w", userID, month, err)
		}
		counted, err := result.RowsAffected()
		if err != nil {
			return fmt.Errorf("count publish of user %s in %s: %w", userID, month, err)
		}
		if counted == 1 {
			return nil
		}
	}

	used, err := publishesInMonth(ctx, tx, userID, now)
	if err != nil {
		return err
	}
	return &quotaError{Limit: limit, Used: used}
}

// publishesInMonth returns the user's publishes in the calendar month of now.
func publishesInMonth(ctx context.Context, q querier, userID string, now time.Time) (int, error) {
	var used int
	err := q.QueryRowContext(ctx, `SELECT publishes FROM skill_publish_counts WHERE user_id = $1 AND month = $2`,
		userID, monthKey(now)).Scan(&used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("load publishes of user %s: %w", userID, err)
	}
	return used, nil
}

// refreshSummary sets the skill's latest and current version and copies
// the current version's description, body, license and metadata. A
// non-nil published moves updated_at, which only publishes do.
func refreshSummary(ctx context.Context, tx *sql.Tx, skillID int64, published *time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT version, yanked FROM skill_versions WHERE skill_id = $1`, skillID)
	if err != nil {
		return fmt.Errorf("list versions of skill %d: %w", skillID, err)
	}
	var states []versionState
	for rows.Next() {
		var state versionState
		if err := rows.Scan(&state.Key, &state.Yanked); err != nil {
			rows.Close()
			return fmt.Errorf("scan version of skill %d: %w", skillID, err)
		}
		states = append(states, state)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list versions of skill %d: %w", skillID, err)
	}

	latest := latestVersion(states)
	current := latest
	if current == "" {
		current = highestVersion(states)
	}
	var latestValue any
	if latest != "" {
		latestValue = latest
	}

	query := `UPDATE skills SET latest_version = $2, current_version = $3, current_yanked = v.yanked,
	              description = v.description, body = v.body, license = v.license, metadata = v.metadata
	          FROM skill_versions v WHERE skills.id = $1 AND v.skill_id = $1 AND v.version = $3`
	args := []any{skillID, latestValue, current}
	if published != nil {
		query = `UPDATE skills SET latest_version = $2, current_version = $3, current_yanked = v.yanked,
		             description = v.description, body = v.body, license = v.license, metadata = v.metadata, updated_at = $4
		         FROM skill_versions v WHERE skills.id = $1 AND v.skill_id = $1 AND v.version = $3`
		args = append(args, published.UnixMilli())
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("update summary of skill %d: %w", skillID, err)
	}
	return nil
}

// skillColumns are the columns that scanSkill reads, from skills AS s.
const skillColumns = `s.id, s.name, s.description, s.license, s.metadata, s.current_version, s.current_yanked,
	s.latest_version, s.deprecated, s.deprecation_message, s.install_count, s.created_at, s.updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanSkill(row scanner, extra ...any) (skillRow, error) {
	var s skillRow
	var metadata string
	var latest sql.NullString
	var created, updated int64
	dest := append([]any{&s.ID, &s.Name, &s.Description, &s.License, &metadata, &s.CurrentVersion, &s.CurrentYanked, &latest,
		&s.Deprecated, &s.DeprecationMessage, &s.InstallCount, &created, &updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return skillRow{}, err
	}
	s.Metadata = decodeMetadata(metadata)
	s.LatestVersion = latest.String
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	return s, nil
}

// skillByName returns the skill and its owners' user ids, sorted.
func (s *store) skillByName(ctx context.Context, name string) (skillRow, []string, error) {
	row, err := scanSkill(s.db.QueryRowContext(ctx, `SELECT `+skillColumns+` FROM skills s WHERE s.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return skillRow{}, nil, errNotFound
	}
	if err != nil {
		return skillRow{}, nil, fmt.Errorf("load skill %s: %w", name, err)
	}
	owners, err := listOwners(ctx, s.db, row.ID)
	return row, owners, err
}

// versionColumns are the columns that loadVersion reads.
const versionColumns = `v.skill_id, s.name, v.version, v.version_text, v.prerelease, v.digest, v.size, v.unpacked_size,
	v.files, v.description, v.license, v.metadata, v.body, v.yanked, v.yanked_at, v.published_at`

func scanVersion(row scanner) (versionRow, error) {
	var v versionRow
	var metadata string
	var yankedAt sql.NullInt64
	var published int64
	err := row.Scan(&v.SkillID, &v.Skill, &v.Version, &v.VersionText, &v.Prerelease, &v.Digest, &v.Size, &v.UnpackedSize,
		&v.Files, &v.Description, &v.License, &metadata, &v.Body, &v.Yanked, &yankedAt, &published)
	if err != nil {
		return versionRow{}, err
	}
	v.Metadata = decodeMetadata(metadata)
	if yankedAt.Valid {
		t := fromMillis(yankedAt.Int64)
		v.YankedAt = &t
	}
	v.PublishedAt = fromMillis(published)
	return v, nil
}

// loadVersion returns the one version that where selects, over
// skill_versions AS v joined with skills AS s.
func loadVersion(ctx context.Context, q querier, where string, args ...any) (versionRow, error) {
	row, err := scanVersion(q.QueryRowContext(ctx,
		`SELECT `+versionColumns+` FROM skill_versions v JOIN skills s ON s.id = v.skill_id WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return versionRow{}, errNotFound
	}
	if err != nil {
		return versionRow{}, fmt.Errorf("load version: %w", err)
	}
	return row, nil
}

// version returns one version of the named skill by its key.
func (s *store) version(ctx context.Context, name, key string) (versionRow, error) {
	return loadVersion(ctx, s.db, `s.name = $1 AND v.version = $2`, name, key)
}

// versions returns every version of the named skill, highest first.
func (s *store) versions(ctx context.Context, name string) ([]versionRow, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+versionColumns+` FROM skill_versions v JOIN skills s ON s.id = v.skill_id WHERE s.name = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", name, err)
	}
	defer rows.Close()

	byKey := map[string]versionRow{}
	var keys []string
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("scan version of %s: %w", name, err)
		}
		byKey[v.Version] = v
		keys = append(keys, v.Version)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", name, err)
	}

	sortVersionsDescending(keys)
	out := make([]versionRow, len(keys))
	for i, key := range keys {
		out[i] = byKey[key]
	}
	return out, nil
}

// ownedSkill returns the id of the named skill, or errNotFound, or
// errNotOwner when userID does not own it.
func ownedSkill(ctx context.Context, q querier, name, userID string) (int64, error) {
	var skillID int64
	err := q.QueryRowContext(ctx, `SELECT id FROM skills WHERE name = $1`, name).Scan(&skillID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("load skill %s: %w", name, err)
	}
	owner, err := isOwner(ctx, q, skillID, userID)
	if err != nil {
		return 0, err
	}
	if !owner {
		return 0, errNotOwner
	}
	return skillID, nil
}

func isOwner(ctx context.Context, q querier, skillID int64, userID string) (bool, error) {
	var found int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM skill_owners WHERE skill_id = $1 AND user_id = $2`, skillID, userID).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check owner of skill %d: %w", skillID, err)
	}
	return true, nil
}

// setYanked yanks or restores one version; owners only.
func (s *store) setYanked(ctx context.Context, name, key, userID string, yanked bool, now time.Time) (versionRow, error) {
	var row versionRow
	err := inTx(ctx, s.db, "yank "+name+" "+key, func(tx *sql.Tx) error {
		skillID, err := ownedSkill(ctx, tx, name, userID)
		if err != nil {
			return err
		}
		var yankedAt any
		if yanked {
			yankedAt = now.UnixMilli()
		}
		result, err := tx.ExecContext(ctx, `UPDATE skill_versions SET yanked = $3, yanked_at = $4 WHERE skill_id = $1 AND version = $2`,
			skillID, key, yanked, yankedAt)
		if err != nil {
			return fmt.Errorf("update version %s of %s: %w", key, name, err)
		}
		if n, err := result.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, errNotFound)
		}
		if err := refreshSummary(ctx, tx, skillID, nil); err != nil {
			return err
		}
		row, err = loadVersion(ctx, tx, `v.skill_id = $1 AND v.version = $2`, skillID, key)
		return err
	})
	return row, err
}

// setDeprecated marks the skill deprecated with message, or clears the
// mark; owners only.
func (s *store) setDeprecated(ctx context.Context, name, userID string, deprecated bool, message string) error {
	return inTx(ctx, s.db, "deprecate "+name, func(tx *sql.Tx) error {
		skillID, err := ownedSkill(ctx, tx, name, userID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE skills SET deprecated = $2, deprecation_message = $3 WHERE id = $1`,
			skillID, deprecated, message); err != nil {
			return fmt.Errorf("update deprecation of %s: %w", name, err)
		}
		return nil
	})
}

// encodeMetadata returns the JSON text of the metadata column.
func encodeMetadata(metadata map[string]string) string {
	if len(metadata) == 0 {
		return "{}"
	}
	encoded, _ := json.Marshal(metadata)
	return string(encoded)
}

func decodeMetadata(text string) map[string]string {
	out := map[string]string{}
	_ = json.Unmarshal([]byte(text), &out)
	return out
}

// maxIndexedBodyBytes is how much of SKILL.md's body is stored for search.
// The whole file stays in the archive.
const maxIndexedBodyBytes = 64 << 10

// indexedBody returns the start of body, at most maxIndexedBodyBytes and
// cut at a character boundary.
func indexedBody(body string) string {
	if len(body) <= maxIndexedBodyBytes {
		return body
	}
	cut := maxIndexedBodyBytes
	for cut > 0 && !utf8RuneStart(body[cut]) {
		cut--
	}
	return body[:cut]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
