package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestSkillSearchIgnoresAccentsAndCase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)
		s.mustPublish(t, m, simpleSkill(t, "cv-helper", "Polishes your Résumé for every job.", "1.0.0"))
		s.mustPublish(t, m, simpleSkill(t, "unrelated", "Something else entirely.", "1.0.0"))

		for _, q := range []string{"resume", "RÉSUMÉ", "Resumé", "polish"} {
			page := s.searchSkills(t, m, "q="+url.QueryEscape(q))
			if got := page.names(); !slices.Equal(got, []string{"cv-helper"}) {
				t.Errorf("search %q = %v, want [cv-helper]", q, got)
			}
		}

		// The body of SKILL.md is searched too.
		body := "---\nname: body-only\ndescription: Plain.\nversion: 1.0.0\n---\nHandles crème brûlée recipes.\n"
		s.mustPublish(t, m, zipSkill(t, skillFile{name: "SKILL.md", body: body}))
		if got := s.searchSkills(t, m, "q=creme+brulee").names(); !slices.Equal(got, []string{"body-only"}) {
			t.Errorf("search in the body = %v, want [body-only]", got)
		}
	})
}

func TestSkillSearchRanking(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		owner := s.proMember(t)
		s.mustPublish(t, owner, simpleSkill(t, "pdf-tools", "PDF tools: merge PDF, split PDF, fill PDF forms.", "1.0.0"))
		s.mustPublish(t, owner, simpleSkill(t, "pdf-merge", "Merge PDF files into one PDF.", "1.0.0"))
		s.mustPublish(t, owner, simpleSkill(t, "pdf", "A small helper for documents.", "1.0.0"))
		s.mustPublish(t, owner, simpleSkill(t, "notes", "Takes notes.", "1.0.0"))

		page := s.searchSkills(t, owner, "q=pdf&sort=relevance")
		if len(page.Items) != 3 || page.Items[0].Name != "pdf" {
			t.Errorf("relevance for pdf = %v, want the exact name pdf first of 3", page.names())
		}

		// Installs: pdf-merge by two users, pdf-tools by one.
		for range 2 {
			user := s.proMember(t)
			if res := s.as(t, user, "POST", "/v1/skills/pdf-merge/install", ""); res.status != http.StatusCreated {
				t.Fatalf("install = %d %s", res.status, res.body)
			}
		}
		if res := s.as(t, owner, "POST", "/v1/skills/pdf-tools/install", ""); res.status != http.StatusCreated {
			t.Fatalf("install = %d %s", res.status, res.body)
		}
		page = s.searchSkills(t, owner, "q=pdf&sort=installs")
		if got := page.names(); !slices.Equal(got, []string{"pdf-merge", "pdf-tools", "pdf"}) {
			t.Errorf("installs order = %v, want [pdf-merge pdf-tools pdf]", got)
		}
		if page.Items[0].InstallCount != 2 {
			t.Errorf("install_count of pdf-merge = %d, want 2", page.Items[0].InstallCount)
		}

		// Updated: the last publish first.
		s.clock.Advance(time.Minute)
		s.mustPublish(t, owner, simpleSkill(t, "pdf-tools", "PDF tools: merge PDF, split PDF, fill PDF forms.", "1.1.0"))
		if got := s.searchSkills(t, owner, "sort=updated").names(); got[0] != "pdf-tools" || len(got) != 4 {
			t.Errorf("updated order = %v, want pdf-tools first of 4", got)
		}

		if e == enginePostgres {
			if got := s.searchSkills(t, owner, "q=pdf-tols").names(); !slices.Contains(got, "pdf-tools") {
				t.Errorf("search with a typo = %v, want pdf-tools among them", got)
			}
		}
	})
}

func TestSkillSearchPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)
		want := []string{"page-a", "page-b", "page-c", "page-d", "page-e"}
		for _, name := range want {
			s.mustPublish(t, m, simpleSkill(t, name, "Paged skill "+name+".", "1.0.0"))
		}

		for _, sort := range []string{"relevance", "installs", "updated"} {
			var seen []string
			query := "q=paged&limit=2&sort=" + sort
			for pages := 0; pages < 10; pages++ {
				page := s.searchSkills(t, m, query)
				seen = append(seen, page.names()...)
				if page.NextCursor == nil {
					break
				}
				query = "q=paged&limit=2&sort=" + sort + "&cursor=" + url.QueryEscape(*page.NextCursor)
			}
			slices.Sort(seen)
			if !slices.Equal(seen, want) {
				t.Errorf("pages of sort=%s = %v, want each of %v once", sort, seen, want)
			}
		}

		res := s.as(t, m, "GET", "/v1/skills?sort=updated&cursor=bm90LWEtY3Vyc29y", "")
		if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != "cursor" {
			t.Errorf("forged cursor = %d %s, want 400 on cursor", res.status, res.body)
		}
		if res := s.as(t, m, "GET", "/v1/skills?sort=newest", ""); res.status != http.StatusBadRequest {
			t.Errorf("unknown sort = %d, want 400", res.status)
		}
	})
}
