package skills

import (
	"fmt"
	"slices"

	"github.com/Masterminds/semver/v3"
)

// skillVersion is a strict semantic version (2.0.0, no "v" prefix, no
// leading zeros). Build metadata is kept for display only: 1.0.0+a and
// 1.0.0+b are the same version, whose Key is "1.0.0".
type skillVersion struct {
	parsed *semver.Version
	// Key is major.minor.patch and the pre-release, without build
	// metadata: the version's identity in the store and in URLs.
	Key string
}

// parseVersion parses text as a strict semantic version.
func parseVersion(text string) (skillVersion, error) {
	parsed, err := semver.StrictNewVersion(text)
	if err != nil {
		return skillVersion{}, fmt.Errorf("version %q is not a strict semantic version such as 1.2.3 or 1.2.3-beta.1: %v", text, err)
	}
	key := fmt.Sprintf("%d.%d.%d", parsed.Major(), parsed.Minor(), parsed.Patch())
	if pre := parsed.Prerelease(); pre != "" {
		key += "-" + pre
	}
	return skillVersion{parsed: parsed, Key: key}, nil
}

// Prerelease reports whether the version has a pre-release part.
func (v skillVersion) Prerelease() bool { return v.parsed.Prerelease() != "" }

// Compare orders versions by semantic version precedence.
func (v skillVersion) Compare(other skillVersion) int { return v.parsed.Compare(other.parsed) }

// versionState is what choosing the latest version needs of one version.
type versionState struct {
	Key    string
	Yanked bool
}

// latestVersion returns the key of the highest version that is neither a
// pre-release nor yanked, and "" when there is none.
func latestVersion(versions []versionState) string {
	var best *skillVersion
	for _, state := range versions {
		v, err := parseVersion(state.Key)
		if err != nil || state.Yanked || v.Prerelease() {
			continue
		}
		if best == nil || v.Compare(*best) > 0 {
			best = &v
		}
	}
	if best == nil {
		return ""
	}
	return best.Key
}

// highestVersion returns the key of the highest version of any kind, and
// "" for an empty list.
func highestVersion(versions []versionState) string {
	keys := make([]skillVersion, 0, len(versions))
	for _, state := range versions {
		if v, err := parseVersion(state.Key); err == nil {
			keys = append(keys, v)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	return slices.MaxFunc(keys, skillVersion.Compare).Key
}

// sortVersionsDescending orders version keys from the highest down.
func sortVersionsDescending(keys []string) {
	slices.SortStableFunc(keys, func(a, b string) int {
		va, errA := parseVersion(a)
		vb, errB := parseVersion(b)
		if errA != nil || errB != nil {
			return 0
		}
		return vb.Compare(va)
	})
}
