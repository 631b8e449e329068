package skills

import (
	"errors"
	"strings"
	"testing"
)

func TestParseManifestValid(t *testing.T) {
	text := "\uFEFF---\r\n" +
		"name: pdf-tools\n" +
		"description: |\n  Fill and merge PDF forms.\n" +
		"version: 1.2.0\n" +
		"license: MIT\n" +
		"allowed-tools: [Read, Write]\n" +
		"metadata:\n  author: ada\n  revision: 3\n" +
		"---\n# PDF tools\n\nUse it like this.\n"

	m, err := parseManifest([]byte(text))
	if err != nil {
		t.Fatalf("parseManifest: %v", err)
	}
	if m.Name != "pdf-tools" {
		t.Errorf("name = %q", m.Name)
	}
	if m.Description != "Fill and merge PDF forms." {
		t.Errorf("description = %q, want it trimmed", m.Description)
	}
	if m.Version != "1.2.0" || m.License != "MIT" {
		t.Errorf("version, license = %q, %q", m.Version, m.License)
	}
	if m.Metadata["author"] != "ada" || m.Metadata["revision"] != "3" || len(m.Metadata) != 2 {
		t.Errorf("metadata = %v", m.Metadata)
	}
	if m.Body != "# PDF tools\n\nUse it like this.\n" {
		t.Errorf("body = %q", m.Body)
	}
}

func TestParseManifestOptionalFields(t *testing.T) {
	m, err := parseManifest([]byte("---\nname: a\ndescription: d\n---\n"))
	if err != nil {
		t.Fatalf("parseManifest: %v", err)
	}
	if m.Version != "" || m.License != "" || m.Metadata != nil || m.Body != "" {
		t.Errorf("optional fields = %+v, want empty", m)
	}
}

// TestParseManifestRejects breaks each rule of the front matter once.
func TestParseManifestRejects(t *testing.T) {
	long := strings.Repeat("x", maxDescriptionLength+1)
	cases := []struct {
		name, text, field string
	}{
		{"no front matter", "# Just markdown\n", "SKILL.md"},
		{"unclosed front matter", "---\nname: a\ndescription: d\n", "SKILL.md"},
		{"front matter not a mapping", "---\n- a\n- b\n---\n", "SKILL.md"},
		{"invalid YAML", "---\nname: [a\n---\n", "SKILL.md"},
		{"not UTF-8", "---\nname: a\ndescription: \xff\n---\n", "SKILL.md"},
		{"missing name", "---\ndescription: d\n---\n", "name"},
		{"empty name", "---\nname: ''\ndescription: d\n---\n", "name"},
		{"name too long", "---\nname: " + strings.Repeat("a", 65) + "\ndescription: d\n---\n", "name"},
		{"upper-case name", "---\nname: PDF\ndescription: d\n---\n", "name"},
		{"leading hyphen", "---\nname: -pdf\ndescription: d\n---\n", "name"},
		{"trailing hyphen", "---\nname: pdf-\ndescription: d\n---\n", "name"},
		{"double hyphen", "---\nname: pdf--tools\ndescription: d\n---\n", "name"},
		{"name with underscore", "---\nname: pdf_tools\ndescription: d\n---\n", "name"},
		{"name is a list", "---\nname: [a]\ndescription: d\n---\n", "name"},
		{"name twice", "---\nname: a\nname: b\ndescription: d\n---\n", "name"},
		{"missing description", "---\nname: a\n---\n", "description"},
		{"blank description", "---\nname: a\ndescription: '   '\n---\n", "description"},
		{"description too long", "---\nname: a\ndescription: " + long + "\n---\n", "description"},
		{"description is a mapping", "---\nname: a\ndescription: {x: y}\n---\n", "description"},
		{"license is a list", "---\nname: a\ndescription: d\nlicense: [MIT]\n---\n", "license"},
		{"license too long", "---\nname: a\ndescription: d\nlicense: " + strings.Repeat("l", 257) + "\n---\n", "license"},
		{"metadata is a list", "---\nname: a\ndescription: d\nmetadata: [a]\n---\n", "metadata"},
		{"metadata value is a mapping", "---\nname: a\ndescription: d\nmetadata:\n  a: {b: c}\n---\n", "metadata.a"},
		{"metadata value is null", "---\nname: a\ndescription: d\nmetadata:\n  a:\n---\n", "metadata.a"},
		{"alias", "---\nname: &n a\ndescription: *n\n---\n", "description"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseManifest([]byte(tc.text))
			var problem *fieldError
			if !errors.As(err, &problem) {
				t.Fatalf("parseManifest = %v, want a *fieldError", err)
			}
			if problem.Field != tc.field {
				t.Errorf("field = %q (%s), want %q", problem.Field, problem.Message, tc.field)
			}
		})
	}
}

func TestParseManifestKeepsInvalidName(t *testing.T) {
	m, err := parseManifest([]byte("---\nname: mу-skill\ndescription: d\n---\n"))
	if err == nil {
		t.Fatal("a Cyrillic name passed")
	}
	if m.Name != "mу-skill" {
		t.Errorf("name beside the error = %q, want the name as written", m.Name)
	}
}

func TestPublishVersion(t *testing.T) {
	cases := []struct {
		query, front, wantKey string
		wantErr               bool
	}{
		{"", "1.2.3", "1.2.3", false},
		{"1.2.3", "", "1.2.3", false},
		{"1.0.0+a", "", "1.0.0", false},
		{"1.0.0+b", "1.0.0+a", "1.0.0", false},
		{"2.0.0-rc.1", "", "2.0.0-rc.1", false},
		{"", "", "", true},
		{"v1.2.3", "", "", true},
		{"1.2", "", "", true},
		{"01.2.3", "", "", true},
		{"1.2.3", "1.2.4", "", true},
	}
	for _, tc := range cases {
		version, _, err := publishVersion(tc.query, tc.front)
		if tc.wantErr {
			if err == nil {
				t.Errorf("publishVersion(%q, %q) = %s, want an error", tc.query, tc.front, version.Key)
			}
			continue
		}
		if err != nil || version.Key != tc.wantKey {
			t.Errorf("publishVersion(%q, %q) = %q, %v, want %q", tc.query, tc.front, version.Key, err, tc.wantKey)
		}
	}
}

func TestLatestVersion(t *testing.T) {
	versions := []versionState{
		{Key: "1.0.0"}, {Key: "1.10.0"}, {Key: "1.9.0"}, {Key: "2.0.0-rc.1"}, {Key: "1.11.0", Yanked: true},
	}
	if got := latestVersion(versions); got != "1.10.0" {
		t.Errorf("latest = %q, want 1.10.0 (semantic order, no pre-release, no yanked)", got)
	}
	if got := highestVersion(versions); got != "2.0.0-rc.1" {
		t.Errorf("highest = %q, want 2.0.0-rc.1", got)
	}
	if got := latestVersion([]versionState{{Key: "1.0.0", Yanked: true}, {Key: "2.0.0-beta"}}); got != "" {
		t.Errorf("latest of yanked and pre-release = %q, want none", got)
	}
}
