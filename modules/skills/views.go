package skills

import (
	"strings"
	"time"
)

// skillSummary is a skill as search shows it.
type skillSummary struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Version is the version that the description comes from: the latest,
	// or the highest version when none is latest.
	Version string `json:"version"`
	// Yanked is set when Version is yanked, which happens when every version is.
	Yanked             bool      `json:"yanked"`
	LatestVersion      *string   `json:"latest_version"`
	Deprecated         bool      `json:"deprecated"`
	DeprecationMessage string    `json:"deprecation_message"`
	InstallCount       int64     `json:"install_count"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// skillDetail is a skill as GET /v1/skills/{name} shows it.
type skillDetail struct {
	skillSummary
	License  string            `json:"license"`
	Metadata map[string]string `json:"metadata"`
	// Owners are user ids; empty when the last owner deleted the account.
	Owners    []string  `json:"owners"`
	CreatedAt time.Time `json:"created_at"`
}

func summaryOf(s skillRow) skillSummary {
	return skillSummary{
		Name:               s.Name,
		Description:        s.Description,
		Version:            s.CurrentVersion,
		Yanked:             s.CurrentYanked,
		LatestVersion:      optional(s.LatestVersion),
		Deprecated:         s.Deprecated,
		DeprecationMessage: s.DeprecationMessage,
		InstallCount:       s.InstallCount,
		UpdatedAt:          s.UpdatedAt,
	}
}

func detailOf(s skillRow, owners []string) skillDetail {
	return skillDetail{skillSummary: summaryOf(s), License: s.License, Metadata: s.Metadata, Owners: owners, CreatedAt: s.CreatedAt}
}

// versionView is one version of a skill.
type versionView struct {
	Name string `json:"name"`
	// Version is the semantic version without build metadata, its identity.
	Version string `json:"version"`
	// BuildMetadata is the part after "+" of the version as first published.
	BuildMetadata string `json:"build_metadata"`
	Prerelease    bool   `json:"prerelease"`
	// Latest is set on the version that installs without a pin get.
	Latest      bool              `json:"latest"`
	Yanked      bool              `json:"yanked"`
	YankedAt    *time.Time        `json:"yanked_at"`
	Description string            `json:"description"`
	License     string            `json:"license"`
	Metadata    map[string]string `json:"metadata"`
	// Digest is "sha256:" and the hex SHA-256 of the canonical tar.
	Digest string `json:"digest"`
	// Size is the stored tar.gz in bytes, UnpackedSize the sum of its file sizes.
	Size         int64     `json:"size"`
	UnpackedSize int64     `json:"unpacked_size"`
	Files        int       `json:"files"`
	PublishedAt  time.Time `json:"published_at"`
}

func versionOf(v versionRow, latest string) versionView {
	_, build, _ := strings.Cut(v.VersionText, "+")
	return versionView{
		Name:          v.Skill,
		Version:       v.Version,
		BuildMetadata: build,
		Prerelease:    v.Prerelease,
		Latest:        v.Version == latest,
		Yanked:        v.Yanked,
		YankedAt:      v.YankedAt,
		Description:   v.Description,
		License:       v.License,
		Metadata:      v.Metadata,
		Digest:        v.Digest,
		Size:          v.Size,
		UnpackedSize:  v.UnpackedSize,
		Files:         v.Files,
		PublishedAt:   v.PublishedAt,
	}
}

// searchPage is the response of GET /v1/skills.
type searchPage struct {
	Items []skillSummary `json:"items"`
	// NextCursor continues the listing; null on the last page.
	NextCursor *string `json:"next_cursor"`
}

// installationView is one of the caller's installations.
type installationView struct {
	Name string `json:"name"`
	// Version is the pinned version, or the latest when not pinned (null
	// when the skill has no latest version any more).
	Version       *string   `json:"version"`
	PinnedVersion *string   `json:"pinned_version"`
	LatestVersion *string   `json:"latest_version"`
	Yanked        bool      `json:"yanked"`
	Deprecated    bool      `json:"deprecated"`
	InstalledAt   time.Time `json:"installed_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func installationOf(row installationRow) installationView {
	return installationView{
		Name:          row.Skill,
		Version:       optional(row.Version),
		PinnedVersion: optional(row.PinnedVersion),
		LatestVersion: optional(row.LatestVersion),
		Yanked:        row.Yanked,
		Deprecated:    row.Deprecated,
		InstalledAt:   row.InstalledAt,
		UpdatedAt:     row.UpdatedAt,
	}
}

// installationPage is the response of GET /v1/skills/installed.
type installationPage struct {
	Items      []installationView `json:"items"`
	NextCursor *string            `json:"next_cursor"`
}

// availabilityView is the response of GET /v1/skills/names/{name}/availability.
type availabilityView struct {
	Name string `json:"name"`
	// Valid reports whether the name follows the naming rules, and Problem
	// names the rule that it breaks.
	Valid   bool    `json:"valid"`
	Problem *string `json:"problem"`
	// Available reports whether the caller may publish under the name: it
	// is valid and either free or a skill that the caller owns.
	Available bool `json:"available"`
	// SimilarTo is the taken name that the name equals after folding, or
	// null. It equals Name when the exact name is taken.
	SimilarTo *string `json:"similar_to"`
}

// ownersView is the response of the owner routes.
type ownersView struct {
	Name   string   `json:"name"`
	Owners []string `json:"owners"`
}

// optional returns nil for "" and a pointer to value otherwise.
func optional(value string) *string {
	if value == "" {
		return nil
	}
	return &value
}
