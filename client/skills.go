package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Content types of a skill archive for PublishSkill.
const (
	SkillArchiveZip   = "application/zip"
	SkillArchiveTarGz = "application/gzip"
)

// maxSkillTarBytes bounds the uncompressed tar that DownloadSkill reads to
// check the digest: the server's largest max_unpacked_bytes (256 MiB) plus
// room for the tar headers of its largest max_files (10,000 entries).
const maxSkillTarBytes = 256<<20 + 10_000*1024

// SkillSummary is a skill as search lists it.
type SkillSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Version is the version the description comes from: the latest, or
	// else the highest.
	Version            string    `json:"version"`
	Yanked             bool      `json:"yanked"`
	LatestVersion      *string   `json:"latest_version"`
	Deprecated         bool      `json:"deprecated"`
	DeprecationMessage string    `json:"deprecation_message"`
	InstallCount       int64     `json:"install_count"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// Skill is a skill with its owners and current metadata.
type Skill struct {
	SkillSummary
	License  string            `json:"license"`
	Metadata map[string]string `json:"metadata"`
	// Owners are user ids; empty when the last owner deleted the account.
	Owners    []string  `json:"owners"`
	CreatedAt time.Time `json:"created_at"`
}

// SkillVersion is one published version of a skill.
type SkillVersion struct {
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	BuildMetadata string            `json:"build_metadata"`
	Prerelease    bool              `json:"prerelease"`
	Latest        bool              `json:"latest"`
	Yanked        bool              `json:"yanked"`
	YankedAt      *time.Time        `json:"yanked_at"`
	Description   string            `json:"description"`
	License       string            `json:"license"`
	Metadata      map[string]string `json:"metadata"`
	// Digest is "sha256:" and the hex SHA-256 of the uncompressed tar.
	Digest       string    `json:"digest"`
	Size         int64     `json:"size"`
	UnpackedSize int64     `json:"unpacked_size"`
	Files        int       `json:"files"`
	PublishedAt  time.Time `json:"published_at"`
}

// SkillSearch is a search query. Sort is relevance (the default),
// installs or updated; Cursor is the NextCursor of the previous page.
type SkillSearch struct {
	Query  string
	Sort   string
	Limit  int
	Cursor string
}

// SkillSearchPage is one page of search hits; NextCursor is nil on the
// last page.
type SkillSearchPage struct {
	Items      []SkillSummary `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

// SkillInstallation is one of the caller's installed skills.
type SkillInstallation struct {
	Name string `json:"name"`
	// Version is the pinned version or the latest; nil when the skill has
	// no latest version any more.
	Version       *string   `json:"version"`
	PinnedVersion *string   `json:"pinned_version"`
	LatestVersion *string   `json:"latest_version"`
	Yanked        bool      `json:"yanked"`
	Deprecated    bool      `json:"deprecated"`
	InstalledAt   time.Time `json:"installed_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// SkillInstallationPage is one page of the caller's installations.
type SkillInstallationPage struct {
	Items      []SkillInstallation `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

// SkillNameAvailability is whether the caller may publish under a name.
type SkillNameAvailability struct {
	Name      string  `json:"name"`
	Valid     bool    `json:"valid"`
	Problem   *string `json:"problem"`
	Available bool    `json:"available"`
	SimilarTo *string `json:"similar_to"`
}

// SkillOwners are the user ids of a skill's owners.
type SkillOwners struct {
	Name   string   `json:"name"`
	Owners []string `json:"owners"`
}

// SkillArchive is a downloaded archive whose digest was checked.
type SkillArchive struct {
	// Data is the tar.gz as the server stores it.
	Data   []byte
	Digest string
}

func skillPath(name string) string { return "/v1/skills/" + url.PathEscape(name) }

func skillVersionPath(name, version string) string {
	return skillPath(name) + "/versions/" + url.PathEscape(version)
}

// PublishSkill publishes an archive, a zip or tar.gz (contentType
// SkillArchiveZip or SkillArchiveTarGz) whose root holds SKILL.md.
// version, when not empty, is the version to publish or confirm. created
// is false when the same content was published as this version before.
// The server returns the same version for the same bytes, so a publish is
// retried like an idempotent request. progress, when not nil, follows the upload.
func (c *Client) PublishSkill(ctx context.Context, archive []byte, contentType, version string, progress func(sent, total int64)) (SkillVersion, bool, error) {
	path := "/v1/skills"
	if version != "" {
		path += "?version=" + url.QueryEscape(version)
	}
	res, err := c.Do(ctx, Request{Method: http.MethodPost, Path: path, RawBody: archive, ContentType: contentType,
		UploadProgress: progress, safeToRepeat: true})
	if err != nil {
		return SkillVersion{}, false, err
	}
	var published SkillVersion
	err = res.Decode(&published)
	return published, res.Status == http.StatusCreated, err
}

// SearchSkills returns one page of skills matching the query; an empty
// query lists every skill.
func (c *Client) SearchSkills(ctx context.Context, search SkillSearch) (SkillSearchPage, error) {
	query := url.Values{}
	for name, value := range map[string]string{"q": search.Query, "sort": search.Sort, "cursor": search.Cursor} {
		if value != "" {
			query.Set(name, value)
		}
	}
	if search.Limit > 0 {
		query.Set("limit", strconv.Itoa(search.Limit))
	}
	path := "/v1/skills"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var page SkillSearchPage
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: path}, &page)
	return page, err
}

// Skill returns a skill with its owners.
func (c *Client) Skill(ctx context.Context, name string) (Skill, error) {
	var skill Skill
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: skillPath(name)}, &skill)
	return skill, err
}

// SkillVersions returns a skill's versions, highest first.
func (c *Client) SkillVersions(ctx context.Context, name string) ([]SkillVersion, error) {
	var versions []SkillVersion
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: skillPath(name) + "/versions"}, &versions)
	return versions, err
}

// SkillVersion returns one version; version "latest" names the latest.
func (c *Client) SkillVersion(ctx context.Context, name, version string) (SkillVersion, error) {
	var v SkillVersion
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: skillVersionPath(name, version)}, &v)
	return v, err
}

// DownloadSkill downloads the archive of a version ("latest" for the
// latest) and checks that the SHA-256 of its uncompressed tar is the
// digest that the server sent.
func (c *Client) DownloadSkill(ctx context.Context, name, version string) (SkillArchive, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: skillVersionPath(name, version) + "/archive", Accept: SkillArchiveTarGz})
	if err != nil {
		return SkillArchive{}, err
	}
	digest := res.Header.Get("X-Skill-Digest")
	if err := CheckSkillDigest(res.Body, digest); err != nil {
		return SkillArchive{}, fmt.Errorf("download %s %s: %w", name, version, err)
	}
	return SkillArchive{Data: res.Body, Digest: digest}, nil
}

// CheckSkillDigest checks that the tar inside the gzip archive has the
// digest "sha256:<hex>".
func CheckSkillDigest(archive []byte, digest string) error {
	want, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(want) != sha256.Size*2 {
		return fmt.Errorf("invalid archive digest %q: want sha256: and 64 hex digits", digest)
	}
	unzipped, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return fmt.Errorf("the archive is not gzip: %w", err)
	}
	hash := sha256.New()
	n, err := io.Copy(hash, io.LimitReader(unzipped, maxSkillTarBytes+1))
	if err != nil {
		return fmt.Errorf("read the archive: %w", err)
	}
	if n > maxSkillTarBytes {
		return fmt.Errorf("the archive unpacks to more than %d bytes", int64(maxSkillTarBytes))
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != want {
		return fmt.Errorf("the archive's digest is sha256:%s, the server announced %s", got, digest)
	}
	return nil
}

// InstallSkill records the caller's installation, pinned to version or,
// with "", following the latest version. created is false when the skill
// was installed already and only the pin changed. Installing again is
// harmless, so the request is retried like an idempotent one.
func (c *Client) InstallSkill(ctx context.Context, name, version string) (SkillInstallation, bool, error) {
	req := Request{Method: http.MethodPost, Path: skillPath(name) + "/install", safeToRepeat: true}
	if version != "" {
		req.Body = map[string]string{"version": version}
	}
	res, err := c.Do(ctx, req)
	if err != nil {
		return SkillInstallation{}, false, err
	}
	var installation SkillInstallation
	err = res.Decode(&installation)
	return installation, res.Status == http.StatusCreated, err
}

// InstalledSkills returns one page of the caller's installations in name
// order; cursor is the NextCursor of the previous page.
func (c *Client) InstalledSkills(ctx context.Context, cursor string, limit int) (SkillInstallationPage, error) {
	query := url.Values{}
	if cursor != "" {
		query.Set("cursor", cursor)
	}
	if limit > 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/skills/installed"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var page SkillInstallationPage
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: path}, &page)
	return page, err
}

// UninstallSkill removes the caller's installation.
func (c *Client) UninstallSkill(ctx context.Context, name string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/skills/installed/" + url.PathEscape(name)}, nil)
}

// SkillNameAvailable reports whether the caller may publish under name.
func (c *Client) SkillNameAvailable(ctx context.Context, name string) (SkillNameAvailability, error) {
	var availability SkillNameAvailability
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/skills/names/" + url.PathEscape(name) + "/availability"}, &availability)
	return availability, err
}

// YankSkillVersion yanks a version (owners only); yanking again changes
// nothing.
func (c *Client) YankSkillVersion(ctx context.Context, name, version string) (SkillVersion, error) {
	var v SkillVersion
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: skillVersionPath(name, version) + "/yank", safeToRepeat: true}, &v)
	return v, err
}

// UnyankSkillVersion restores a yanked version (owners only).
func (c *Client) UnyankSkillVersion(ctx context.Context, name, version string) (SkillVersion, error) {
	var v SkillVersion
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: skillVersionPath(name, version) + "/unyank", safeToRepeat: true}, &v)
	return v, err
}

// DeprecateSkill marks a skill deprecated with an optional message
// (owners only).
func (c *Client) DeprecateSkill(ctx context.Context, name, message string) (Skill, error) {
	req := Request{Method: http.MethodPost, Path: skillPath(name) + "/deprecate", safeToRepeat: true}
	if message != "" {
		req.Body = map[string]string{"message": message}
	}
	var skill Skill
	err := c.Call(ctx, req, &skill)
	return skill, err
}

// UndeprecateSkill clears a skill's deprecation (owners only).
func (c *Client) UndeprecateSkill(ctx context.Context, name string) (Skill, error) {
	var skill Skill
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: skillPath(name) + "/undeprecate", safeToRepeat: true}, &skill)
	return skill, err
}

// AddSkillOwner makes another user an owner (owners only).
func (c *Client) AddSkillOwner(ctx context.Context, name, userID string) (SkillOwners, error) {
	var owners SkillOwners
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: skillPath(name) + "/owners",
		Body: map[string]string{"user_id": userID}, safeToRepeat: true}, &owners)
	return owners, err
}

// RemoveSkillOwner takes an owner off the skill; the last owner stays.
func (c *Client) RemoveSkillOwner(ctx context.Context, name, userID string) (SkillOwners, error) {
	var owners SkillOwners
	err := c.Call(ctx, Request{Method: http.MethodDelete, Path: skillPath(name) + "/owners/" + url.PathEscape(userID)}, &owners)
	return owners, err
}
