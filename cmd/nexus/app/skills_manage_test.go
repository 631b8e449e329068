package app_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/nexus-suite/nexus/modules/auth"
)

// availability is the data of GET /v1/skills/names/{name}/availability.
type availability struct {
	Valid     bool    `json:"valid"`
	Available bool    `json:"available"`
	SimilarTo *string `json:"similar_to"`
}

func (s *testServer) availability(t *testing.T, m member, name string) availability {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/skills/names/"+name+"/availability", "")
	if res.status != http.StatusOK {
		t.Fatalf("availability of %s = %d %s", name, res.status, res.body)
	}
	var view availability
	res.data(t, &view)
	return view
}

func TestSkillNamesSimilarToTakenOnes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		alice, bob := s.proMember(t), s.proMember(t)
		s.mustPublish(t, alice, simpleSkill(t, "my-skill", "Alice's skill.", "1.0.0"))

		for _, name := range []string{"myskill", "my-skill", "mу-skill" /* Cyrillic у */} {
			res := s.publish(t, bob, "application/zip", simpleSkill(t, name, "Bob's skill.", "1.0.0"), "")
			if res.status != http.StatusConflict {
				t.Errorf("bob publishes %s = %d %s, want 409", name, res.status, res.body)
				continue
			}
			if got := res.envelopeError(t).Details["similar_to"]; got != "my-skill" {
				t.Errorf("bob publishes %s: similar_to = %v, want my-skill", name, got)
			}
		}

		for name, want := range map[string]availability{
			"myskill":    {Valid: true, Available: false},
			"mу-skill":   {Valid: false, Available: false},
			"my-skill":   {Valid: true, Available: false},
			"fresh-name": {Valid: true, Available: true},
		} {
			got := s.availability(t, bob, name)
			if got.Valid != want.Valid || got.Available != want.Available {
				t.Errorf("availability of %s for bob = %+v, want valid %v, available %v", name, got, want.Valid, want.Available)
			}
			if name != "fresh-name" && (got.SimilarTo == nil || *got.SimilarTo != "my-skill") {
				t.Errorf("availability of %s: similar_to = %v, want my-skill", name, got.SimilarTo)
			}
		}
		if got := s.availability(t, alice, "my-skill"); !got.Available {
			t.Errorf("my-skill for its owner = %+v, want available", got)
		}

		// A co-owner may publish under the name.
		res := s.as(t, alice, "POST", "/v1/skills/my-skill/owners", `{"user_id": "`+bob.id+`"}`)
		if res.status != http.StatusCreated {
			t.Fatalf("add owner = %d %s", res.status, res.body)
		}
		s.mustPublish(t, bob, simpleSkill(t, "my-skill", "Now shared.", "1.1.0"))
		if owners := s.skill(t, bob, "my-skill").Owners; len(owners) != 2 {
			t.Errorf("owners = %v, want alice and bob", owners)
		}
		res = s.as(t, bob, "DELETE", "/v1/skills/my-skill/owners/"+alice.id, "")
		if res.status != http.StatusOK {
			t.Fatalf("remove owner = %d %s", res.status, res.body)
		}
		res = s.as(t, bob, "DELETE", "/v1/skills/my-skill/owners/"+bob.id, "")
		if res.status != http.StatusConflict {
			t.Errorf("remove the last owner = %d %s, want 409", res.status, res.body)
		}
	})
}

func TestSkillYankAndLatest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		owner, other := s.proMember(t), s.proMember(t)
		for _, version := range []string{"1.0.0", "1.1.0", "2.0.0-beta.1"} {
			s.mustPublish(t, owner, simpleSkill(t, "yankee", "Yanks.", version))
		}
		latest := func() string {
			t.Helper()
			res := s.as(t, owner, "GET", "/v1/skills/yankee/versions/latest", "")
			if res.status != http.StatusOK {
				return ""
			}
			var view skillVersionView
			res.data(t, &view)
			return view.Version
		}
		if got := latest(); got != "1.1.0" {
			t.Fatalf("latest = %q, want 1.1.0 (pre-releases are never latest)", got)
		}

		if res := s.as(t, other, "POST", "/v1/skills/yankee/versions/1.1.0/yank", ""); res.status != http.StatusForbidden || res.envelopeError(t).Code != "FORBIDDEN" {
			t.Errorf("yank by another user = %d %s, want 403 FORBIDDEN", res.status, res.body)
		}
		res := s.as(t, owner, "POST", "/v1/skills/yankee/versions/1.1.0/yank", "")
		if res.status != http.StatusOK {
			t.Fatalf("yank = %d %s", res.status, res.body)
		}
		if got := latest(); got != "1.0.0" {
			t.Errorf("latest after yanking 1.1.0 = %q, want 1.0.0", got)
		}
		download := s.as(t, other, "GET", "/v1/skills/yankee/versions/1.1.0/archive", "")
		if download.status != http.StatusOK || len(untar(t, download.body)) != 2 {
			t.Errorf("download of the yanked version = %d, want 200 with the files", download.status)
		}
		var yanked skillVersionView
		s.as(t, other, "GET", "/v1/skills/yankee/versions/1.1.0", "").data(t, &yanked)
		if !yanked.Yanked || yanked.Latest {
			t.Errorf("yanked version = %+v", yanked)
		}
		if res := s.as(t, other, "POST", "/v1/skills/yankee/install", `{"version": "1.1.0"}`); res.status != http.StatusConflict {
			t.Errorf("pin a yanked version = %d %s, want 409", res.status, res.body)
		}

		s.as(t, owner, "POST", "/v1/skills/yankee/versions/1.0.0/yank", "")
		if res := s.as(t, owner, "GET", "/v1/skills/yankee/versions/latest", ""); res.status != http.StatusNotFound {
			t.Errorf("latest with every release yanked = %d %s, want 404", res.status, res.body)
		}
		if res := s.as(t, other, "POST", "/v1/skills/yankee/install", ""); res.status != http.StatusConflict {
			t.Errorf("install without a latest version = %d %s, want 409", res.status, res.body)
		}

		res = s.as(t, owner, "POST", "/v1/skills/yankee/versions/1.1.0/unyank", "")
		if res.status != http.StatusOK {
			t.Fatalf("unyank = %d %s", res.status, res.body)
		}
		if got := latest(); got != "1.1.0" {
			t.Errorf("latest after unyank = %q, want 1.1.0", got)
		}

		if res := s.as(t, other, "POST", "/v1/skills/yankee/deprecate", `{"message": "use yankee2"}`); res.status != http.StatusForbidden {
			t.Errorf("deprecate by another user = %d, want 403", res.status)
		}
		if res := s.as(t, owner, "POST", "/v1/skills/yankee/deprecate", `{"message": "use yankee2"}`); res.status != http.StatusOK {
			t.Fatalf("deprecate = %d %s", res.status, res.body)
		}
		page := s.searchSkills(t, other, "q=yankee")
		if len(page.Items) != 1 || !page.Items[0].Deprecated || page.Items[0].DeprecationMessage != "use yankee2" {
			t.Errorf("search after deprecation = %+v", page.Items)
		}

		// A skill whose every version is yanked shows as yanked in search.
		s.mustPublish(t, owner, simpleSkill(t, "gone", "Gone soon.", "1.0.0"))
		s.as(t, owner, "POST", "/v1/skills/gone/versions/1.0.0/yank", "")
		page = s.searchSkills(t, other, "q=gone")
		if len(page.Items) != 1 || !page.Items[0].Yanked || page.Items[0].LatestVersion != nil {
			t.Errorf("search of a fully yanked skill = %+v", page.Items)
		}
	})
}

func TestSkillInstallCountsEachUserOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		owner, user := s.proMember(t), s.proMember(t)
		s.mustPublish(t, owner, simpleSkill(t, "counter", "Counts.", "1.0.0"))
		s.mustPublish(t, owner, simpleSkill(t, "counter", "Counts.", "1.1.0"))

		if res := s.as(t, user, "POST", "/v1/skills/counter/install", ""); res.status != http.StatusCreated {
			t.Fatalf("install = %d %s", res.status, res.body)
		}
		res := s.as(t, user, "POST", "/v1/skills/counter/install", `{"version": "1.0.0"}`)
		if res.status != http.StatusOK {
			t.Fatalf("install again with a pin = %d %s, want 200", res.status, res.body)
		}
		if got := s.skill(t, user, "counter").InstallCount; got != 1 {
			t.Errorf("install_count after two installs by one user = %d, want 1", got)
		}

		var installed struct {
			Items []struct {
				Name          string  `json:"name"`
				Version       *string `json:"version"`
				PinnedVersion *string `json:"pinned_version"`
			} `json:"items"`
		}
		s.as(t, user, "GET", "/v1/skills/installed", "").data(t, &installed)
		if len(installed.Items) != 1 || *installed.Items[0].Version != "1.0.0" || *installed.Items[0].PinnedVersion != "1.0.0" {
			t.Errorf("installed = %+v", installed.Items)
		}

		if res := s.as(t, user, "DELETE", "/v1/skills/installed/counter", ""); res.status != http.StatusOK {
			t.Fatalf("uninstall = %d %s", res.status, res.body)
		}
		if got := s.skill(t, user, "counter").InstallCount; got != 0 {
			t.Errorf("install_count after uninstall = %d, want 0", got)
		}
		if res := s.as(t, user, "DELETE", "/v1/skills/installed/counter", ""); res.status != http.StatusNotFound {
			t.Errorf("uninstall twice = %d, want 404", res.status)
		}
		s.as(t, user, "POST", "/v1/skills/counter/install", "")
		s.as(t, owner, "POST", "/v1/skills/counter/install", "")
		if got := s.skill(t, user, "counter").InstallCount; got != 2 {
			t.Errorf("install_count after reinstall and a second user = %d, want 2", got)
		}
		if res := s.as(t, user, "POST", "/v1/skills/missing/install", ""); res.status != http.StatusNotFound {
			t.Errorf("install of an unknown skill = %d, want 404", res.status)
		}
	})
}

func TestSkillAccountDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		alice, bob, carol := s.proMember(t), s.proMember(t), s.proMember(t)
		s.mustPublish(t, alice, simpleSkill(t, "solo", "Alice alone.", "1.0.0"))
		s.mustPublish(t, alice, simpleSkill(t, "shared", "Alice and Bob.", "1.0.0"))
		s.as(t, alice, "POST", "/v1/skills/shared/owners", `{"user_id": "`+bob.id+`"}`)
		s.as(t, alice, "POST", "/v1/skills/solo/install", "")
		s.as(t, carol, "POST", "/v1/skills/solo/install", "")

		if err := auth.NewAdmin(s.app.DB(), s.clock, nil).Delete(context.Background(), alice.id); err != nil {
			t.Fatalf("delete alice: %v", err)
		}

		solo := s.skill(t, carol, "solo")
		if len(solo.Owners) != 0 || solo.InstallCount != 1 {
			t.Errorf("solo after its owner left = owners %v, installs %d; want no owner and 1 install", solo.Owners, solo.InstallCount)
		}
		if res := s.as(t, carol, "GET", "/v1/skills/solo/versions/1.0.0/archive", ""); res.status != http.StatusOK {
			t.Errorf("download of an owner-less skill = %d, want 200", res.status)
		}
		if res := s.publish(t, carol, "application/zip", simpleSkill(t, "solo", "Taken over?", "2.0.0"), ""); res.status != http.StatusConflict {
			t.Errorf("publish under an owner-less name = %d %s, want 409", res.status, res.body)
		}
		if owners := s.skill(t, bob, "shared").Owners; !slices.Equal(owners, []string{bob.id}) {
			t.Errorf("shared owners = %v, want only bob", owners)
		}
		s.mustPublish(t, bob, simpleSkill(t, "shared", "Bob now.", "1.1.0"))
		for _, table := range []string{"skill_installations", "skill_owners", "skill_publish_counts"} {
			if n := s.count(t, `SELECT COUNT(*) FROM `+table+` WHERE user_id = $1`, alice.id); n != 0 {
				t.Errorf("%s rows of the deleted user = %d, want 0", table, n)
			}
		}
		if n := s.count(t, `SELECT COUNT(*) FROM skill_versions WHERE published_by = $1`, alice.id); n != 0 {
			t.Errorf("versions still naming the deleted publisher = %d, want 0", n)
		}
	})
}
