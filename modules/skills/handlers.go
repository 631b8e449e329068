package skills

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
)

// Limits of query parameters and bodies.
const (
	maxQueryLength              = 256
	maxDeprecationMessageLength = 1024
	// latestAlias stands for the latest version in version paths.
	latestAlias = "latest"
)

// archiveFormats maps the accepted Content-Types of a publish to the
// archive container.
var archiveFormats = map[string]archiveFormat{
	"application/zip":        formatZip,
	"application/gzip":       formatTarGzip,
	"application/x-gzip":     formatTarGzip,
	"application/x-tar+gzip": formatTarGzip,
}

// publish stores a new version from the raw archive in the body. The
// version comes from the version query parameter or the front matter;
// when both are given they must be equal.
func (m *Module) publish(r *edge.Request) error {
	format, err := archiveFormatOf(r)
	if err != nil {
		return err
	}
	userID := r.Principal.UserID
	limit := r.Principal.Entitlements.Limits.SkillPublishesPerMonth
	now := m.host.Clock.Now().UTC()
	ctx := r.Context()

	body := r.Ctx.Request.Body()
	if len(body) > m.opts.MaxArchiveBytes {
		return edge.QuotaExceeded("request_body_bytes", int64(m.opts.MaxArchiveBytes))
	}
	release, err := m.acquirePublishSlot(r)
	if err != nil {
		return err
	}
	defer release()

	archive, err := readArchive(format, body, m.opts.limits())
	if err != nil {
		return archiveRejection(err)
	}
	man, err := parseManifest(archive.manifestData())
	if err != nil {
		return m.manifestRejection(ctx, man, err)
	}
	if archive.Root != "" && archive.Root != man.Name {
		return edge.Validation("name", fmt.Sprintf("the archive's root folder %q differs from the name %q in SKILL.md", archive.Root, man.Name))
	}
	version, versionText, err := publishVersion(string(r.Ctx.QueryArgs().Peek("version")), man.Version)
	if err != nil {
		return err
	}

	canonical, err := buildCanonical(archive)
	if err != nil {
		return err
	}
	if err := m.checkQuotaEarly(ctx, userID, limit, now, man.Name, version.Key, canonical.Digest); err != nil {
		return err
	}
	if err := m.blobs.Put(ctx, canonical.Digest, canonical.Gzip); err != nil {
		return err
	}
	in := publishInput{
		UserID: userID, Manifest: man, Version: version, VersionText: versionText, Digest: canonical.Digest,
		Size: int64(len(canonical.Gzip)), UnpackedSize: archive.UnpackedBytes, Files: len(archive.Files),
		Now: now, MonthlyLimit: limit,
	}
	row, created, err := m.store.publish(ctx, in)
	if err != nil {
		// The blob of a rejected publish stays until the sweep, which
		// cannot take it from a publish of the same bytes in flight.
		return publishRejection(err)
	}

	skill, _, err := m.store.skillByName(ctx, man.Name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		r.Logger().Info("skill version published", slog.String("skill", man.Name),
			slog.String("version", version.Key), slog.String("digest", canonical.Digest))
	}
	return r.JSON(status, versionOf(row, skill.LatestVersion))
}

// checkQuotaEarly rejects a publish over the monthly limit before its
// blob is stored. The same bytes of an existing version pass, because
// they do not count; the publish transaction checks the limit again.
func (m *Module) checkQuotaEarly(ctx context.Context, userID string, limit int, now time.Time, name, key, digest string) error {
	used, err := publishesInMonth(ctx, m.store.db, userID, now)
	if err != nil || used < limit {
		return err
	}
	existing, err := m.store.version(ctx, name, key)
	switch {
	case err == nil && existing.Digest == digest:
		return nil
	case err != nil && !errors.Is(err, errNotFound):
		return err
	}
	return quotaExceeded(limit, used)
}

// archiveFormatOf picks the archive container from the Content-Type.
func archiveFormatOf(r *edge.Request) (archiveFormat, error) {
	header := string(r.Ctx.Request.Header.ContentType())
	mediaType, _, err := mime.ParseMediaType(header)
	if format, ok := archiveFormats[mediaType]; ok && err == nil {
		return format, nil
	}
	return 0, edge.Validation("Content-Type",
		fmt.Sprintf("Content-Type %q is not supported, expected application/zip or application/gzip (a tar.gz)", header))
}

// publishVersion returns the version to publish from the query parameter
// and the front matter's version, either of which may be empty.
func publishVersion(fromQuery, fromManifest string) (skillVersion, string, error) {
	text := fromQuery
	if text == "" {
		text = fromManifest
	}
	if text == "" {
		return skillVersion{}, "", edge.Validation("version", "version is missing: set it in the front matter of SKILL.md or in the version query parameter")
	}
	version, err := parseVersion(text)
	if err != nil {
		return skillVersion{}, "", edge.Validation("version", err.Error())
	}
	if fromQuery != "" && fromManifest != "" {
		other, err := parseVersion(fromManifest)
		if err != nil {
			return skillVersion{}, "", edge.Validation("version", "the front matter's "+err.Error())
		}
		if other.Key != version.Key {
			return skillVersion{}, "", edge.Validation("version",
				fmt.Sprintf("the version parameter %s differs from the front matter's version %s", fromQuery, fromManifest))
		}
	}
	return version, text, nil
}

func quotaExceeded(limit, used int) *edge.Error {
	err := edge.QuotaExceeded("publishes_per_month", int64(limit))
	err.Message = fmt.Sprintf("%d of %d skill publishes this calendar month (UTC) used", used, limit)
	err.Details["used"] = used
	return err
}

// archiveRejection maps the errors of readArchive to responses.
func archiveRejection(err error) error {
	var problem *archiveError
	var limit *limitError
	switch {
	case errors.As(err, &problem):
		rejection := edge.Validation("archive", problem.Message)
		rejection.Details["reason"] = problem.Reason
		if problem.Path != "" {
			rejection.Details["path"] = problem.Path
		}
		return rejection
	case errors.As(err, &limit):
		return edge.QuotaExceeded(limit.LimitType, limit.Limit)
	}
	return err
}

// manifestRejection maps an error of parseManifest to a response. A name
// that breaks the naming rules but folds to a taken name, such as one with
// a Cyrillic letter, gets 409 like any look-alike of a taken name.
func (m *Module) manifestRejection(ctx context.Context, man manifest, err error) error {
	var problem *fieldError
	if !errors.As(err, &problem) {
		return err
	}
	if problem.Field == "name" && man.Name != "" {
		taken, lookupErr := m.store.similarName(ctx, man.Name)
		if lookupErr != nil {
			return lookupErr
		}
		if taken != "" {
			return nameTaken(man.Name, taken)
		}
	}
	return edge.Validation(problem.Field, problem.Message)
}

func nameTaken(name, similarTo string) *edge.Error {
	message := fmt.Sprintf("the name %s is taken by another publisher", name)
	if similarTo != name {
		message = fmt.Sprintf("the name %s is too similar to the taken name %s", name, similarTo)
	}
	return edge.NewError(edge.CodeConflict, message, map[string]any{"similar_to": similarTo})
}

// publishRejection maps the errors of store.publish to responses.
func publishRejection(err error) error {
	var taken *nameTakenError
	var quota *quotaError
	var conflict *versionConflictError
	switch {
	case errors.As(err, &taken):
		return nameTaken(taken.SimilarTo, taken.SimilarTo)
	case errors.As(err, &quota):
		return quotaExceeded(quota.Limit, quota.Used)
	case errors.As(err, &conflict):
		return edge.NewError(edge.CodeConflict,
			fmt.Sprintf("version %s of %s exists with other content; versions are immutable, publish a new version", conflict.Existing.Version, conflict.Existing.Skill),
			map[string]any{"version": conflict.Existing.Version, "digest": conflict.Existing.Digest})
	}
	return err
}

// search lists skills that match q, a page at a time.
func (m *Module) search(r *edge.Request) error {
	args := r.Ctx.QueryArgs()
	text := string(args.Peek("q"))
	if utf8.RuneCountInString(text) > maxQueryLength || !utf8.ValidString(text) {
		return edge.Validation("q", fmt.Sprintf("q must be valid UTF-8 of at most %d characters", maxQueryLength))
	}
	sort := string(args.Peek("sort"))
	if sort == "" {
		sort = sortRelevance
	}
	if sort != sortRelevance && sort != sortInstalls && sort != sortUpdated {
		return edge.Validation("sort", "sort must be relevance, installs or updated")
	}
	limit, err := m.pageSize(r)
	if err != nil {
		return err
	}
	after, err := decodeCursor(string(args.Peek("cursor")), sort)
	if err != nil {
		return edge.Validation("cursor", "cursor is invalid; pass the next_cursor of the previous page with the same sort")
	}

	hits, err := m.store.search(r.Context(), searchQuery{Text: text, Sort: sort, After: after, Limit: limit + 1})
	if err != nil {
		return err
	}

	page := searchPage{Items: []skillSummary{}}
	for i, hit := range hits {
		if i == limit {
			next := hits[i-1].cursor(sort)
			page.NextCursor = &next
			break
		}
		page.Items = append(page.Items, summaryOf(hit.skillRow))
	}
	return r.JSON(http.StatusOK, page)
}

// pageSize reads the limit query parameter.
func (m *Module) pageSize(r *edge.Request) (int, error) {
	raw := string(r.Ctx.QueryArgs().Peek("limit"))
	if raw == "" {
		return m.opts.DefaultPageSize, nil
	}
	limit, err := strconv.Atoi(raw)
	if err != nil || limit < 1 || limit > m.opts.MaxPageSize {
		return 0, edge.Validation("limit", fmt.Sprintf("limit must be an integer from 1 to %d", m.opts.MaxPageSize))
	}
	return limit, nil
}

// availability reports whether the caller may publish under a name.
func (m *Module) availability(r *edge.Request) error {
	name := pathParam(r, "name")
	if len(name) > 4*maxNameLength {
		return edge.Validation("name", fmt.Sprintf("name has %d bytes; names have at most %d characters", len(name), maxNameLength))
	}

	view := availabilityView{Name: name, Valid: true}
	if err := checkName(name); err != nil {
		view.Valid = false
		view.Problem = optional(err.Error())
	}
	taken, err := m.store.similarName(r.Context(), name)
	if err != nil {
		return err
	}
	view.SimilarTo = optional(taken)
	view.Available = view.Valid && taken == ""
	if view.Valid && taken == name {
		owned, err := m.store.owns(r.Context(), name, r.Principal.UserID)
		if err != nil {
			return err
		}
		view.Available = owned
	}
	return r.JSON(http.StatusOK, view)
}

func (m *Module) getSkill(r *edge.Request) error {
	skill, owners, err := m.store.skillByName(r.Context(), pathParam(r, "name"))
	if errors.Is(err, errNotFound) {
		return skillNotFound(pathParam(r, "name"))
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, detailOf(skill, owners))
}

func skillNotFound(name string) *edge.Error {
	return edge.NotFound(fmt.Sprintf("no skill is named %q", name))
}

func (m *Module) listVersions(r *edge.Request) error {
	name := pathParam(r, "name")
	skill, _, err := m.store.skillByName(r.Context(), name)
	if errors.Is(err, errNotFound) {
		return skillNotFound(name)
	}
	if err != nil {
		return err
	}
	rows, err := m.store.versions(r.Context(), name)
	if err != nil {
		return err
	}

	views := make([]versionView, 0, len(rows))
	for _, row := range rows {
		views = append(views, versionOf(row, skill.LatestVersion))
	}
	return r.JSON(http.StatusOK, views)
}

// resolveVersion loads the version that the path names, "latest" included.
func (m *Module) resolveVersion(r *edge.Request) (versionRow, skillRow, error) {
	name, param := pathParam(r, "name"), pathParam(r, "version")
	skill, _, err := m.store.skillByName(r.Context(), name)
	if errors.Is(err, errNotFound) {
		return versionRow{}, skillRow{}, skillNotFound(name)
	}
	if err != nil {
		return versionRow{}, skillRow{}, err
	}

	key := skill.LatestVersion
	if param != latestAlias {
		version, err := parseVersion(param)
		if err != nil {
			return versionRow{}, skillRow{}, edge.Validation("version", err.Error())
		}
		key = version.Key
	} else if key == "" {
		return versionRow{}, skillRow{}, edge.NotFound(fmt.Sprintf("skill %s has no latest version: every version is a pre-release or yanked", name))
	}

	row, err := m.store.version(r.Context(), name, key)
	if errors.Is(err, errNotFound) {
		return versionRow{}, skillRow{}, edge.NotFound(fmt.Sprintf("skill %s has no version %s", name, key))
	}
	return row, skill, err
}

func (m *Module) getVersion(r *edge.Request) error {
	row, skill, err := m.resolveVersion(r)
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, versionOf(row, skill.LatestVersion))
}

// downloadArchive sends the stored tar.gz of a version, yanked ones
// included. X-Skill-Digest and the ETag carry the digest of the tar inside.
func (m *Module) downloadArchive(r *edge.Request) error {
	row, _, err := m.resolveVersion(r)
	if err != nil {
		return err
	}
	data, err := m.blobs.Get(r.Context(), row.Digest)
	if err != nil {
		return fmt.Errorf("load archive of %s %s: %w", row.Skill, row.Version, err)
	}

	header := &r.Ctx.Response.Header
	header.Set("X-Skill-Digest", row.Digest)
	header.Set("ETag", `"`+row.Digest+`"`)
	header.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.tar.gz"`, row.Skill, row.Version))
	r.Raw(http.StatusOK, "application/gzip", data)
	return nil
}

// pathParam returns the path parameter name percent-decoded, because the
// router passes segments as they were sent: a client may encode the "+"
// of build metadata or the letters of a name that is not ASCII. A segment
// that does not decode is returned as sent.
func pathParam(r *edge.Request, name string) string {
	raw := r.Param(name)
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		return raw
	}
	return decoded
}

// publishRetrySeconds is the Retry-After of a publish that found every
// slot taken; unpacking an archive takes well under a second.
const publishRetrySeconds = 1

// acquirePublishSlot takes one of modules.skills.max_concurrent_publishes
// slots, or returns 429 RATE_LIMITED with Retry-After when all are taken.
func (m *Module) acquirePublishSlot(r *edge.Request) (release func(), err error) {
	slots := m.publishSlots
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
		r.Ctx.Response.Header.Set("Retry-After", strconv.Itoa(publishRetrySeconds))
		return nil, edge.NewError(edge.CodeRateLimited, "too many skills are being published on this server; retry shortly",
			map[string]any{"retry_after": publishRetrySeconds})
	}
}
