package app_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/entitlements"
)

// Archive limits of the test servers, small so the limit tests stay fast.
// The body limit leaves room for a gzip bomb of 1 GiB, about 1 MiB.
const (
	testSkillArchiveBytes  = 2 << 20
	testSkillUnpackedBytes = 1 << 20
	testSkillFiles         = 20
)

// skillFile is one member of a test archive.
type skillFile struct {
	name string
	body string
	mode fs.FileMode
	// typeflag, when set, writes a tar entry of that type with link as its target.
	typeflag byte
	link     string
}

// skillMD returns a SKILL.md with the given front matter fields, the
// description quoted; an empty version is left out.
func skillMD(name, description, version string) string {
	text := "---\nname: " + name + "\ndescription: " + strconv.Quote(description) + "\n"
	if version != "" {
		text += "version: " + version + "\n"
	}
	return text + "---\n# " + name + "\n\nInstructions for the agent.\n"
}

// skillVersionView is the data of a version response.
type skillVersionView struct {
	Name          string            `json:"name"`
	Version       string            `json:"version"`
	BuildMetadata string            `json:"build_metadata"`
	Prerelease    bool              `json:"prerelease"`
	Latest        bool              `json:"latest"`
	Yanked        bool              `json:"yanked"`
	Description   string            `json:"description"`
	Metadata      map[string]string `json:"metadata"`
	Digest        string            `json:"digest"`
	Size          int64             `json:"size"`
	UnpackedSize  int64             `json:"unpacked_size"`
	Files         int               `json:"files"`
}

// skillView is the data of GET /v1/skills/{name} and of search items.
type skillView struct {
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	Version            string   `json:"version"`
	Yanked             bool     `json:"yanked"`
	LatestVersion      *string  `json:"latest_version"`
	Deprecated         bool     `json:"deprecated"`
	DeprecationMessage string   `json:"deprecation_message"`
	InstallCount       int64    `json:"install_count"`
	Owners             []string `json:"owners"`
}

type skillSearchView struct {
	Items      []skillView `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

func zipSkill(t *testing.T, files ...skillFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		header := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
		if f.mode != 0 {
			header.SetMode(f.mode)
		}
		entry, err := w.CreateHeader(header)
		if err != nil {
			t.Fatalf("zip entry %q: %v", f.name, err)
		}
		if _, err := entry.Write([]byte(f.body)); err != nil {
			t.Fatalf("zip entry %q: %v", f.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

func tarGzSkill(t *testing.T, files ...skillFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := tar.NewWriter(gz)
	for _, f := range files {
		header := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Now()}
		if f.typeflag != 0 {
			header.Typeflag, header.Linkname, header.Size = f.typeflag, f.link, 0
		}
		if err := w.WriteHeader(header); err != nil {
			t.Fatalf("tar entry %q: %v", f.name, err)
		}
		if header.Size > 0 {
			if _, err := w.Write([]byte(f.body)); err != nil {
				t.Fatalf("tar entry %q: %v", f.name, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close tar: %v", err)
	}
	if err := gz.Close(); err != nil {
		t.Fatalf("close gzip: %v", err)
	}
	return buf.Bytes()
}

// simpleSkill is a zip with SKILL.md and one more file.
func simpleSkill(t *testing.T, name, description, version string) []byte {
	t.Helper()
	return zipSkill(t,
		skillFile{name: "SKILL.md", body: skillMD(name, description, version)},
		skillFile{name: "reference.md", body: "Reference of " + name + ".\n"})
}

// startSkillsServer starts a server with small archive limits and the
// per-IP limit out of the way.
func startSkillsServer(t *testing.T, e engine, configure ...func(cfg *configs.Config)) *testServer {
	t.Helper()
	return startServer(t, serverOption{engine: e, config: func(cfg *configs.Config) {
		cfg.RateLimit.IPPerMinute = 1_000_000
		cfg.RateLimit.IPBurst = 1_000_000
		cfg.Modules["skills"]["max_archive_bytes"] = testSkillArchiveBytes
		cfg.Modules["skills"]["max_unpacked_bytes"] = testSkillUnpackedBytes
		cfg.Modules["skills"]["max_files"] = testSkillFiles
		for _, apply := range configure {
			apply(cfg)
		}
	}})
}

// setPublishLimit sets the skill publishes per month of the pro tier.
func setPublishLimit(limit int) func(cfg *configs.Config) {
	return func(cfg *configs.Config) {
		pro := cfg.Tiers.Catalog["pro"]
		pro.Limits.SkillPublishesPerMonth = limit
		cfg.Tiers.Catalog["pro"] = pro
	}
}

// proMember inserts a member whose tier is pro by an operator's override.
func (s *testServer) proMember(t *testing.T) member {
	t.Helper()
	m := s.member(t)
	admin := entitlements.NewAdmin(s.app.DB(), s.cfg.Tiers, s.clock, s.app.Users())
	if err := admin.SetOverride(context.Background(), m.id, "test", entitlements.OverrideInput{Tier: "pro", Reason: "skills tests"}); err != nil {
		t.Fatalf("grant pro to %s: %v", m.id, err)
	}
	return m
}

// publish sends an archive as the member; query may carry ?version=.
func (s *testServer) publish(t *testing.T, m member, contentType string, archive []byte, query string) response {
	t.Helper()
	return s.do(t, "POST", "/v1/skills"+query, string(archive),
		"Authorization", "Bearer "+s.token(t, m.id, m.session, nil), "Content-Type", contentType)
}

// mustPublish publishes a zip and fails the test unless the status is 201.
func (s *testServer) mustPublish(t *testing.T, m member, archive []byte) skillVersionView {
	t.Helper()
	res := s.publish(t, m, "application/zip", archive, "")
	if res.status != http.StatusCreated {
		t.Fatalf("publish = %d %s", res.status, res.body)
	}
	var view skillVersionView
	res.data(t, &view)
	return view
}

// skill returns GET /v1/skills/{name} as the member.
func (s *testServer) skill(t *testing.T, m member, name string) skillView {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/skills/"+name, "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/skills/%s = %d %s", name, res.status, res.body)
	}
	var view skillView
	res.data(t, &view)
	return view
}

// searchSkills returns one page of GET /v1/skills?query.
func (s *testServer) searchSkills(t *testing.T, m member, query string) skillSearchView {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/skills?"+query, "")
	if res.status != http.StatusOK {
		t.Fatalf("search %s = %d %s", query, res.status, res.body)
	}
	var page skillSearchView
	res.data(t, &page)
	return page
}

// names returns the names of the items.
func (v skillSearchView) names() []string {
	names := make([]string, len(v.Items))
	for i, item := range v.Items {
		names[i] = item.Name
	}
	return names
}

// untar returns the files of a tar.gz by path.
func untar(t *testing.T, data []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open gzip: %v", err)
	}
	r := tar.NewReader(gz)
	files := map[string]string{}
	for {
		header, err := r.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", header.Name, err)
		}
		files[header.Name] = fmt.Sprintf("%o:%s", header.Mode, body)
	}
}
