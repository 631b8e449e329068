package skills

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
)

// ownerError maps the store's ownership errors of the named skill.
func ownerError(name string, err error) error {
	switch {
	case errors.Is(err, errNotFound):
		return skillNotFound(name)
	case errors.Is(err, errNotOwner):
		return edge.Forbidden(fmt.Sprintf("only the owners of %s may change it", name))
	}
	return err
}

func (m *Module) yank(r *edge.Request) error   { return m.setYanked(r, true) }
func (m *Module) unyank(r *edge.Request) error { return m.setYanked(r, false) }

// setYanked yanks or restores a version. A yanked version stays
// downloadable by its exact version but is never the latest.
func (m *Module) setYanked(r *edge.Request, yanked bool) error {
	name := pathParam(r, "name")
	version, err := parseVersion(pathParam(r, "version"))
	if err != nil {
		return edge.Validation("version", err.Error())
	}

	row, err := m.store.setYanked(r.Context(), name, version.Key, r.Principal.UserID, yanked, m.host.Clock.Now())
	if errors.Is(err, errNotFound) {
		if _, _, lookupErr := m.store.skillByName(r.Context(), name); lookupErr == nil {
			return edge.NotFound(fmt.Sprintf("skill %s has no version %s", name, version.Key))
		}
	}
	if err != nil {
		return ownerError(name, err)
	}
	skill, _, err := m.store.skillByName(r.Context(), name)
	if err != nil {
		return err
	}

	r.Logger().Info("skill version yank changed", slog.String("skill", name), slog.String("version", version.Key),
		slog.Bool("yanked", yanked))
	return r.JSON(http.StatusOK, versionOf(row, skill.LatestVersion))
}

// deprecationInput is the optional body of POST /v1/skills/{name}/deprecate.
type deprecationInput struct {
	Message string `json:"message"`
}

func (m *Module) deprecate(r *edge.Request) error {
	var input deprecationInput
	if len(r.Ctx.Request.Body()) > 0 {
		if err := r.Decode(&input); err != nil {
			return err
		}
	}
	input.Message = strings.TrimSpace(input.Message)
	if utf8.RuneCountInString(input.Message) > maxDeprecationMessageLength {
		return edge.Validation("message", fmt.Sprintf("message has more than %d characters", maxDeprecationMessageLength))
	}
	return m.setDeprecated(r, true, input.Message)
}

func (m *Module) undeprecate(r *edge.Request) error { return m.setDeprecated(r, false, "") }

func (m *Module) setDeprecated(r *edge.Request, deprecated bool, message string) error {
	name := pathParam(r, "name")
	if err := m.store.setDeprecated(r.Context(), name, r.Principal.UserID, deprecated, message); err != nil {
		return ownerError(name, err)
	}
	skill, owners, err := m.store.skillByName(r.Context(), name)
	if err != nil {
		return err
	}
	r.Logger().Info("skill deprecation changed", slog.String("skill", name), slog.Bool("deprecated", deprecated))
	return r.JSON(http.StatusOK, detailOf(skill, owners))
}

// installInput is the optional body of POST /v1/skills/{name}/install.
type installInput struct {
	// Version pins the installation; empty follows the latest version.
	Version string `json:"version"`
}

// install records the caller's installation; installing again changes the pin.
func (m *Module) install(r *edge.Request) error {
	var input installInput
	if len(r.Ctx.Request.Body()) > 0 {
		if err := r.Decode(&input); err != nil {
			return err
		}
	}
	pin := ""
	if input.Version != "" {
		version, err := parseVersion(input.Version)
		if err != nil {
			return edge.Validation("version", err.Error())
		}
		pin = version.Key
	}

	name := pathParam(r, "name")
	row, created, err := m.store.install(r.Context(), r.Principal.UserID, name, pin, m.host.Clock.Now())
	switch {
	case errors.Is(err, errNotFound):
		return skillNotFound(name)
	case errors.Is(err, errInvalidInstallPin):
		return edge.NotFound(fmt.Sprintf("skill %s has no version %s", name, pin))
	case errors.Is(err, errVersionYanked):
		return edge.Conflict(fmt.Sprintf("version %s of %s is yanked; pin another version", pin, name))
	case errors.Is(err, errNoLatest):
		return edge.Conflict(fmt.Sprintf("skill %s has no latest version (every version is a pre-release or yanked); pin a version", name))
	case err != nil:
		return err
	}

	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.JSON(status, installationOf(row))
}

// installed lists the caller's installations by name, a page at a time;
// the cursor is the last name of the previous page.
func (m *Module) installed(r *edge.Request) error {
	limit, err := m.pageSize(r)
	if err != nil {
		return err
	}
	after, err := decodeCursor(string(r.Ctx.QueryArgs().Peek("cursor")), "installed")
	if err != nil {
		return edge.Validation("cursor", "cursor is invalid; pass the next_cursor of the previous page")
	}
	afterName := ""
	if after != nil {
		afterName = after.Name
	}

	rows, err := m.store.installations(r.Context(), m.store.db, r.Principal.UserID, afterName, false, limit+1)
	if err != nil {
		return err
	}

	page := installationPage{Items: []installationView{}}
	for i, row := range rows {
		if i == limit {
			next := searchCursor{Sort: "installed", Name: rows[i-1].Skill}.encode()
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, installationOf(row))
	}
	return r.JSON(http.StatusOK, page)
}

// uninstallResult is the response of DELETE /v1/skills/installed/{name}.
type uninstallResult struct {
	Name      string `json:"name"`
	Installed bool   `json:"installed"`
}

func (m *Module) uninstall(r *edge.Request) error {
	name := pathParam(r, "name")
	err := m.store.uninstall(r.Context(), r.Principal.UserID, name)
	if errors.Is(err, errNotInstalled) {
		return edge.NotFound(fmt.Sprintf("skill %s is not installed", name))
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, uninstallResult{Name: name, Installed: false})
}

// ownerInput is the body of POST /v1/skills/{name}/owners.
type ownerInput struct {
	UserID string `json:"user_id"`
}

func (m *Module) addOwner(r *edge.Request) error {
	var input ownerInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	if input.UserID == "" {
		return edge.Validation("user_id", "user_id is required")
	}

	name := pathParam(r, "name")
	owners, added, err := m.store.addOwner(r.Context(), name, r.Principal.UserID, input.UserID, m.host.Clock.Now())
	if errors.Is(err, errUserUnknown) {
		return edge.NotFound(fmt.Sprintf("no user has the id %q", input.UserID))
	}
	if err != nil {
		return ownerError(name, err)
	}

	status := http.StatusOK
	if added {
		status = http.StatusCreated
		r.Logger().Info("skill owner added", slog.String("skill", name), slog.String("owner_id", input.UserID))
	}
	return r.JSON(status, ownersView{Name: name, Owners: owners})
}

func (m *Module) removeOwner(r *edge.Request) error {
	name, owner := pathParam(r, "name"), pathParam(r, "user_id")
	owners, err := m.store.removeOwner(r.Context(), name, r.Principal.UserID, owner)
	switch {
	case errors.Is(err, errLastOwner):
		return edge.Conflict(fmt.Sprintf("%s is the last owner of %s; add another owner first", owner, name))
	case errors.Is(err, errNotFound):
		if _, _, lookupErr := m.store.skillByName(r.Context(), name); lookupErr == nil {
			return edge.NotFound(fmt.Sprintf("%s is not an owner of %s", owner, name))
		}
	}
	if err != nil {
		return ownerError(name, err)
	}

	r.Logger().Info("skill owner removed", slog.String("skill", name), slog.String("owner_id", owner))
	return r.JSON(http.StatusOK, ownersView{Name: name, Owners: owners})
}

// similarName returns the taken name that name folds to, or "".
func (s *store) similarName(ctx context.Context, name string) (string, error) {
	var taken string
	err := s.db.QueryRowContext(ctx, `SELECT name FROM skills WHERE folded_name = $1`, foldName(name)).Scan(&taken)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up names similar to %q: %w", name, err)
	}
	return taken, nil
}

// owns reports whether userID owns the named skill.
func (s *store) owns(ctx context.Context, name, userID string) (bool, error) {
	_, err := ownedSkill(ctx, s.db, name, userID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errNotOwner), errors.Is(err, errNotFound):
		return false, nil
	}
	return false, err
}
