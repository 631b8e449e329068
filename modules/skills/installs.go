package skills

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// Errors of installations.
var (
	errVersionYanked     = errors.New("the version is yanked")
	errNoLatest          = errors.New("the skill has no version that is neither a pre-release nor yanked")
	errNotInstalled      = errors.New("the skill is not installed")
	errInvalidInstallPin = errors.New("invalid pinned version")
)

// installationRow is one of a user's installations with what the list shows.
type installationRow struct {
	Skill         string
	PinnedVersion string
	LatestVersion string
	Deprecated    bool
	// Version is the pinned version, or the latest when not pinned; Yanked
	// is that version's state.
	Version     string
	Yanked      bool
	InstalledAt time.Time
	UpdatedAt   time.Time
}

// install records the user's installation of the named skill, pinned to
// pin or following the latest version when pin is "". It returns
// created=false when the user had the skill installed already; only a new
// installation adds to the skill's install count. A pin must name a
// version that is not yanked, and following the latest needs one.
func (s *store) install(ctx context.Context, userID, name, pin string, now time.Time) (row installationRow, created bool, err error) {
	err = inTx(ctx, s.db, "install "+name, func(tx *sql.Tx) error {
		var skillID int64
		var latest sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT id, latest_version FROM skills WHERE name = $1`, name).Scan(&skillID, &latest)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("load skill %s: %w", name, err)
		}

		var pinValue any
		if pin == "" {
			if !latest.Valid {
				return errNoLatest
			}
		} else {
			pinned, err := loadVersion(ctx, tx, `v.skill_id = $1 AND v.version = $2`, skillID, pin)
			if errors.Is(err, errNotFound) {
				return errInvalidInstallPin
			}
			if err != nil {
				return err
			}
			if pinned.Yanked {
				return errVersionYanked
			}
			pinValue = pin
		}

		result, err := tx.ExecContext(ctx,
			`INSERT INTO skill_installations (user_id, skill_id, pinned_version, installed_at, updated_at)
			 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, skill_id) DO NOTHING`,
			userID, skillID, pinValue, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert installation of %s: %w", name, err)
		}
		inserted, err := result.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert installation of %s: %w", name, err)
		}
		created = inserted == 1
		if created {
			_, err = tx.ExecContext(ctx, `UPDATE skills SET install_count = install_count + 1 WHERE id = $1`, skillID)
		} else {
			_, err = tx.ExecContext(ctx,
				`UPDATE skill_installations SET pinned_version = $3, updated_at = $4 WHERE user_id = $1 AND skill_id = $2`,
				userID, skillID, pinValue, now.UnixMilli())
		}
		if err != nil {
			return fmt.Errorf("record installation of %s: %w", name, err)
		}

		rows, err := s.installations(ctx, tx, userID, name, true, 1)
		if err != nil {
			return err
		}
		row = rows[0]
		return nil
	})
	return row, created, err
}

// uninstall removes the user's installation of the named skill and takes
// it off the skill's install count.
func (s *store) uninstall(ctx context.Context, userID, name string) error {
	return inTx(ctx, s.db, "uninstall "+name, func(tx *sql.Tx) error {
		result, err := tx.ExecContext(ctx,
			`DELETE FROM skill_installations WHERE user_id = $1 AND skill_id = (SELECT id FROM skills WHERE name = $2)`,
			userID, name)
		if err != nil {
			return fmt.Errorf("delete installation of %s: %w", name, err)
		}
		if n, err := result.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, errNotInstalled)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE skills SET install_count = install_count - 1 WHERE name = $1`, name); err != nil {
			return fmt.Errorf("count uninstall of %s: %w", name, err)
		}
		return nil
	})
}

// installations returns the user's installations in name order: the one of
// the named skill when exact is set, otherwise those after the name, at
// most limit.
func (s *store) installations(ctx context.Context, q querier, userID, name string, exact bool, limit int) ([]installationRow, error) {
	operator := ">"
	if exact {
		operator = "="
	}
	rows, err := q.QueryContext(ctx,
		`SELECT s.name, i.pinned_version, s.latest_version, s.deprecated, COALESCE(v.version, ''), COALESCE(v.yanked, FALSE),
		        i.installed_at, i.updated_at
		 FROM skill_installations i
		 JOIN skills s ON s.id = i.skill_id
		 LEFT JOIN skill_versions v ON v.skill_id = i.skill_id AND v.version = COALESCE(i.pinned_version, s.latest_version)
		 WHERE i.user_id = $1 AND s.name `+operator+` $2
		 ORDER BY s.name LIMIT $3`,
		userID, name, limit)
	if err != nil {
		return nil, fmt.Errorf("list installations of user %s: %w", userID, err)
	}
	defer rows.Close()

	var out []installationRow
	for rows.Next() {
		var row installationRow
		var pinned, latest sql.NullString
		var installed, updated int64
		if err := rows.Scan(&row.Skill, &pinned, &latest, &row.Deprecated, &row.Version, &row.Yanked, &installed, &updated); err != nil {
			return nil, fmt.Errorf("scan installation of user %s: %w", userID, err)
		}
		row.PinnedVersion, row.LatestVersion = pinned.String, latest.String
		row.InstalledAt, row.UpdatedAt = fromMillis(installed), fromMillis(updated)
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list installations of user %s: %w", userID, err)
	}
	if exact && len(out) == 0 {
		return nil, errNotInstalled
	}
	return out, nil
}

// listOwners returns the user ids of the skill's owners, sorted.
func listOwners(ctx context.Context, q querier, skillID int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM skill_owners WHERE skill_id = $1 ORDER BY user_id`, skillID)
	if err != nil {
		return nil, fmt.Errorf("list owners of skill %d: %w", skillID, err)
	}
	defer rows.Close()

	owners := []string{}
	for rows.Next() {
		var owner string
		if err := rows.Scan(&owner); err != nil {
			return nil, fmt.Errorf("scan owner of skill %d: %w", skillID, err)
		}
		owners = append(owners, owner)
	}
	return owners, rows.Err()
}

// addOwner makes newOwner an owner of the named skill, which actor must
// own. It returns the owners after the change and added=false when
// newOwner already was one.
func (s *store) addOwner(ctx context.Context, name, actor, newOwner string, now time.Time) (owners []string, added bool, err error) {
	err = inTx(ctx, s.db, "add owner of "+name, func(tx *sql.Tx) error {
		skillID, err := ownedSkill(ctx, tx, name, actor)
		if err != nil {
			return err
		}
		var found int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = $1`, newOwner).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return errUserUnknown
		}
		if err != nil {
			return fmt.Errorf("look up user %s: %w", newOwner, err)
		}

		result, err := tx.ExecContext(ctx,
			`INSERT INTO skill_owners (skill_id, user_id, added_at) VALUES ($1, $2, $3) ON CONFLICT (skill_id, user_id) DO NOTHING`,
			skillID, newOwner, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert owner of %s: %w", name, err)
		}
		n, err := result.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert owner of %s: %w", name, err)
		}
		added = n == 1
		owners, err = listOwners(ctx, tx, skillID)
		return err
	})
	return owners, added, err
}

// removeOwner takes owner off the named skill, which actor must own. The
// last owner cannot be removed this way; deleting the account can.
func (s *store) removeOwner(ctx context.Context, name, actor, owner string) (owners []string, err error) {
	err = inTx(ctx, s.db, "remove owner of "+name, func(tx *sql.Tx) error {
		skillID, err := ownedSkill(ctx, tx, name, actor)
		if err != nil {
			return err
		}
		current, err := listOwners(ctx, tx, skillID)
		if err != nil {
			return err
		}
		found := false
		for _, id := range current {
			found = found || id == owner
		}
		switch {
		case !found:
			return errNotFound
		case len(current) == 1:
			return errLastOwner
		}

		if _, err := tx.ExecContext(ctx, `DELETE FROM skill_owners WHERE skill_id = $1 AND user_id = $2`, skillID, owner); err != nil {
			return fmt.Errorf("delete owner of %s: %w", name, err)
		}
		owners, err = listOwners(ctx, tx, skillID)
		return err
	})
	return owners, err
}

// deleteUser is the account deletion hook. It removes the user's
// installations (taking them off the install counts), ownerships and
// publish counts, and clears published_by on the user's versions. Skills
// keep their other owners. A skill whose only owner was the user stays
// published and downloadable without an owner: no user can publish new
// versions of it, yank or deprecate it, and its name stays taken.
func deleteUser(ctx context.Context, db *storage.DB, userID string) error {
	return inTx(ctx, db, "delete skills data of user "+userID, func(tx *sql.Tx) error {
		steps := []struct{ step, query string }{
			{"count uninstalls", `UPDATE skills SET install_count = install_count - 1
				WHERE id IN (SELECT skill_id FROM skill_installations WHERE user_id = $1)`},
			{"delete installations", `DELETE FROM skill_installations WHERE user_id = $1`},
			{"delete ownerships", `DELETE FROM skill_owners WHERE user_id = $1`},
			{"delete publish counts", `DELETE FROM skill_publish_counts WHERE user_id = $1`},
			{"clear publisher", `UPDATE skill_versions SET published_by = NULL WHERE published_by = $1`},
		}
		for _, s := range steps {
			if _, err := tx.ExecContext(ctx, s.query, userID); err != nil {
				return fmt.Errorf("%s of user %s: %w", s.step, userID, err)
			}
		}
		return nil
	})
}
