package app_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
)

func TestSkillPublishValid(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)

		files := []skillFile{
			{name: "pdf-tools/SKILL.md", body: skillMD("pdf-tools", "Fill and merge PDF forms.", "1.0.0")},
			{name: "pdf-tools/scripts/fill.py", body: "print('fill')\n", mode: 0o755},
			{name: "pdf-tools/reference.md", body: "# Reference\n"},
		}
		res := s.publish(t, m, "application/zip", zipSkill(t, files...), "")
		if res.status != http.StatusCreated {
			t.Fatalf("publish = %d %s", res.status, res.body)
		}
		var published skillVersionView
		res.data(t, &published)
		if published.Name != "pdf-tools" || published.Version != "1.0.0" || !published.Latest {
			t.Errorf("published = %+v", published)
		}
		if published.Files != 3 || published.Size <= 0 || !strings.HasPrefix(published.Digest, "sha256:") {
			t.Errorf("published archive = %+v", published)
		}

		skill := s.skill(t, m, "pdf-tools")
		if len(skill.Owners) != 1 || skill.Owners[0] != m.id {
			t.Errorf("owners = %v, want [%s]", skill.Owners, m.id)
		}
		if skill.LatestVersion == nil || *skill.LatestVersion != "1.0.0" || skill.Description != "Fill and merge PDF forms." {
			t.Errorf("skill = %+v", skill)
		}

		download := s.as(t, m, "GET", "/v1/skills/pdf-tools/versions/1.0.0/archive", "")
		if download.status != http.StatusOK {
			t.Fatalf("download = %d %s", download.status, download.body)
		}
		if got := download.header.Get("X-Skill-Digest"); got != published.Digest {
			t.Errorf("X-Skill-Digest = %q, want %q", got, published.Digest)
		}
		contents := untar(t, download.body)
		if contents["SKILL.md"] != "644:"+files[0].body || contents["scripts/fill.py"] != "755:print('fill')\n" || len(contents) != 3 {
			t.Errorf("archive contents = %v", contents)
		}
		if got := tarDigest(t, download.body); got != published.Digest {
			t.Errorf("SHA-256 of the served tar = %s, want the digest %s", got, published.Digest)
		}
	})
}

// tarDigest returns "sha256:" and the SHA-256 of the tar inside a tar.gz.
func tarDigest(t *testing.T, data []byte) string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open gzip: %v", err)
	}
	var tarBytes bytes.Buffer
	if _, err := tarBytes.ReadFrom(gz); err != nil {
		t.Fatalf("read gzip: %v", err)
	}
	sum := sha256.Sum256(tarBytes.Bytes())
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestSkillPublishIsIdempotentPerDigest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)

		manifest := skillMD("notes", "Take notes.", "1.0.0")
		first := s.mustPublish(t, m, zipSkill(t, skillFile{name: "SKILL.md", body: manifest}, skillFile{name: "a.md", body: "a"}))

		// The same files as a tar.gz, in another order and with other
		// timestamps, are the same content.
		same := tarGzSkill(t, skillFile{name: "a.md", body: "a"}, skillFile{name: "SKILL.md", body: manifest})
		res := s.publish(t, m, "application/gzip", same, "")
		if res.status != http.StatusOK {
			t.Fatalf("same content again = %d %s, want 200", res.status, res.body)
		}
		var again skillVersionView
		res.data(t, &again)
		if again.Digest != first.Digest {
			t.Errorf("digest of the same content = %s, want %s", again.Digest, first.Digest)
		}

		changed := zipSkill(t, skillFile{name: "SKILL.md", body: manifest}, skillFile{name: "a.md", body: "changed"})
		res = s.publish(t, m, "application/zip", changed, "")
		if res.status != http.StatusConflict {
			t.Fatalf("changed content for 1.0.0 = %d %s, want 409", res.status, res.body)
		}
		if details := res.envelopeError(t).Details; details["version"] != "1.0.0" || details["digest"] != first.Digest {
			t.Errorf("conflict details = %v", details)
		}

		// The version may come from the query parameter instead.
		noVersion := zipSkill(t, skillFile{name: "SKILL.md", body: skillMD("notes", "Take notes.", "")})
		res = s.publish(t, m, "application/zip", noVersion, "?version=1.1.0")
		if res.status != http.StatusCreated {
			t.Fatalf("publish with ?version = %d %s", res.status, res.body)
		}
		res = s.publish(t, m, "application/zip", zipSkill(t, skillFile{name: "SKILL.md", body: manifest}), "?version=2.0.0")
		if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != "version" {
			t.Errorf("query version unlike the front matter = %d %s, want 400 on version", res.status, res.body)
		}
		// Build metadata in the path, encoded or not, names the same version.
		for _, path := range []string{"1.0.0+ci.7", "1.0.0%2Bci.7"} {
			var view skillVersionView
			res := s.as(t, m, "GET", "/v1/skills/notes/versions/"+path, "")
			if res.status != http.StatusOK {
				t.Fatalf("GET version %s = %d %s", path, res.status, res.body)
			}
			if res.data(t, &view); view.Version != "1.0.0" {
				t.Errorf("GET version %s = %s, want 1.0.0", path, view.Version)
			}
		}
		if n := s.count(t, `SELECT COUNT(*) FROM skill_versions`); n != 2 {
			t.Errorf("versions stored = %d, want 2", n)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM skill_blobs`); n != 3 {
			t.Errorf("blobs stored = %d, want 3 (the rejected upload's blob stays until the sweep)", n)
		}
		// The module's sweep deletes the rejected upload's blob once it is
		// older than an hour, and keeps the blobs that versions use.
		s.clock.Advance(2 * time.Hour)
		waitFor(t, "the sweep of the rejected upload's blob", func() bool {
			return s.count(t, `SELECT COUNT(*) FROM skill_blobs`) == 2
		})
	})
}

func TestSkillPublishFrontMatterRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)

		long := strings.Repeat("d", 1025)
		cases := []struct {
			name, manifest, field string
		}{
			{"no front matter", "# notes\n", "SKILL.md"},
			{"missing name", "---\ndescription: d\nversion: 1.0.0\n---\n", "name"},
			{"upper-case name", skillMD("Notes", "d", "1.0.0"), "name"},
			{"leading hyphen", skillMD("-notes", "d", "1.0.0"), "name"},
			{"trailing hyphen", skillMD("notes-", "d", "1.0.0"), "name"},
			{"double hyphen", skillMD("my--notes", "d", "1.0.0"), "name"},
			{"name too long", skillMD(strings.Repeat("n", 65), "d", "1.0.0"), "name"},
			{"missing description", "---\nname: notes\nversion: 1.0.0\n---\n", "description"},
			{"description too long", skillMD("notes", long, "1.0.0"), "description"},
			{"version not semver", skillMD("notes", "d", "1.0"), "version"},
			{"version with v prefix", skillMD("notes", "d", "v1.0.0"), "version"},
			{"missing version", skillMD("notes", "d", ""), "version"},
			{"metadata not strings", "---\nname: notes\ndescription: d\nversion: 1.0.0\nmetadata: [a, b]\n---\n", "metadata"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := s.publish(t, m, "application/zip", zipSkill(t, skillFile{name: "SKILL.md", body: tc.manifest}), "")
				if res.status != http.StatusBadRequest {
					t.Fatalf("publish = %d %s, want 400", res.status, res.body)
				}
				if got := res.envelopeError(t).Details["field"]; got != tc.field {
					t.Errorf("details.field = %v, want %s (%s)", got, tc.field, res.body)
				}
			})
		}

		t.Run("root folder unlike the name", func(t *testing.T) {
			archive := zipSkill(t, skillFile{name: "other/SKILL.md", body: skillMD("notes", "d", "1.0.0")})
			res := s.publish(t, m, "application/zip", archive, "")
			if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != "name" {
				t.Errorf("publish = %d %s, want 400 on name", res.status, res.body)
			}
		})
		if n := s.count(t, `SELECT COUNT(*) FROM skills`); n != 0 {
			t.Errorf("skills after rejected publishes = %d, want 0", n)
		}
	})
}

func TestSkillPublishArchiveRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		m := s.proMember(t)
		manifest := skillFile{name: "SKILL.md", body: skillMD("notes", "Take notes.", "1.0.0")}

		many := []skillFile{manifest}
		for i := range testSkillFiles {
			many = append(many, skillFile{name: "f" + strings.Repeat("x", i), body: "x"})
		}
		cases := []struct {
			name        string
			contentType string
			archive     []byte
			status      int
			reason      string
		}{
			{"zip slip", "application/zip", zipSkill(t, manifest, skillFile{name: "../../evil.sh", body: "x"}), 400, "unsafe_path"},
			{"tar slip", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "docs/../../evil.sh", body: "x"}), 400, "unsafe_path"},
			{"absolute path", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "/etc/evil", body: "x"}), 400, "unsafe_path"},
			{"symbolic link in zip", "application/zip", zipSkill(t, manifest, skillFile{name: "link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), 400, "link"},
			{"symbolic link in tar", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}), 400, "link"},
			{"hard link", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "hard", typeflag: tar.TypeLink, link: "SKILL.md"}), 400, "link"},
			{"device", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "dev", typeflag: tar.TypeBlock}), 400, "special_file"},
			{"duplicate path", "application/zip", zipSkill(t, manifest, skillFile{name: "a.md", body: "1"}, skillFile{name: "a.md", body: "2"}), 400, "duplicate_path"},
			{"duplicate in other case", "application/gzip", tarGzSkill(t, manifest, skillFile{name: "A.md", body: "1"}, skillFile{name: "a.md", body: "2"}), 400, "duplicate_path"},
			{"name not UTF-8", "application/zip", zipSkill(t, manifest, skillFile{name: "caf\xe9.md", body: "x"}), 400, "invalid_path"},
			{"not an archive", "application/zip", []byte("plain text"), 400, "invalid_archive"},
			{"too many files", "application/zip", zipSkill(t, many...), 413, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := s.publish(t, m, tc.contentType, tc.archive, "")
				if res.status != tc.status {
					t.Fatalf("publish = %d %s, want %d", res.status, res.body, tc.status)
				}
				details := res.envelopeError(t).Details
				if tc.reason != "" && details["reason"] != tc.reason {
					t.Errorf("details.reason = %v, want %s", details["reason"], tc.reason)
				}
				if tc.status == 413 && details["limit_type"] != "archive_files" {
					t.Errorf("details.limit_type = %v, want archive_files", details["limit_type"])
				}
			})
		}

		t.Run("other content type", func(t *testing.T) {
			res := s.publish(t, m, "multipart/form-data; boundary=x", zipSkill(t, manifest), "")
			if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != "Content-Type" {
				t.Errorf("publish = %d %s, want 400 on Content-Type", res.status, res.body)
			}
		})
		t.Run("body over the limit", func(t *testing.T) {
			res := s.publish(t, m, "application/zip", bytes.Repeat([]byte("z"), testSkillArchiveBytes+1), "")
			if res.status != http.StatusRequestEntityTooLarge || res.envelopeError(t).Details["limit_type"] != "request_body_bytes" {
				t.Errorf("publish = %d %s, want 413 request_body_bytes", res.status, res.body)
			}
		})
		t.Run("bomb of 1 GiB", func(t *testing.T) {
			bomb := tarGzBomb(t, manifest)
			start := time.Now()
			res := s.publish(t, m, "application/gzip", bomb, "")
			t.Logf("a %d-byte tar.gz that expands to 1 GiB was refused in %s", len(bomb), time.Since(start))
			if res.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("publish = %d %s, want 413", res.status, res.body)
			}
			details := res.envelopeError(t).Details
			if details["limit_type"] != "archive_unpacked_bytes" || details["limit"] != float64(testSkillUnpackedBytes) {
				t.Errorf("details = %v", details)
			}
		})
		if n := s.count(t, `SELECT COUNT(*) FROM skills`); n != 0 {
			t.Errorf("skills after rejected publishes = %d, want 0", n)
		}
	})
}

// tarGzBomb returns a tar.gz holding SKILL.md and a file of 1 GiB of
// zeros. It is built from concatenated gzip members, one member of 16 MiB
// of zeros repeated, so neither the test nor the bomb holds 1 GiB.
func tarGzBomb(t *testing.T, manifest skillFile) []byte {
	t.Helper()
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	if err := tw.WriteHeader(&tar.Header{Name: manifest.name, Mode: 0o644, Size: int64(len(manifest.body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatalf("tar header: %v", err)
	}
	tw.Write([]byte(manifest.body))
	tw.Flush()
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Size: 1 << 30, Typeflag: tar.TypeReg}); err != nil {
		t.Fatalf("tar header: %v", err)
	}

	member := func(data []byte) []byte {
		var buf bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		gz.Write(data)
		gz.Close()
		return buf.Bytes()
	}
	var out bytes.Buffer
	out.Write(member(head.Bytes()))
	zeros := member(make([]byte, 16<<20))
	for range 64 {
		out.Write(zeros)
	}
	out.Write(member(make([]byte, 1024)))
	if out.Len() > testSkillArchiveBytes {
		t.Fatalf("the bomb is %d bytes, over the test's body limit", out.Len())
	}
	return out.Bytes()
}

func TestSkillPublishParallelBuilds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// Enough publish slots that every request reaches the race.
		s := startSkillsServer(t, e, func(cfg *configs.Config) {
			cfg.Modules["skills"]["max_concurrent_publishes"] = 16
		})
		m := s.proMember(t)

		archives := map[string][]byte{}
		for _, build := range []string{"a", "b"} {
			archives[build] = simpleSkill(t, "racer", "Races.", "1.0.0+"+build)
		}

		const perBuild = 3
		statuses := make(chan int, 2*perBuild)
		var wg sync.WaitGroup
		for _, build := range []string{"a", "b"} {
			for range perBuild {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- s.publish(t, m, "application/zip", archives[build], "").status
				}()
			}
		}
		wg.Wait()
		close(statuses)

		counts := map[int]int{}
		for status := range statuses {
			counts[status]++
		}
		if counts[http.StatusCreated] != 1 {
			t.Errorf("201 answers = %d, want exactly 1 (all: %v)", counts[http.StatusCreated], counts)
		}
		if counts[http.StatusOK] != perBuild-1 || counts[http.StatusConflict] != perBuild {
			t.Errorf("answers = %v, want %d × 200 for the winner's build and %d × 409 for the other", counts, perBuild-1, perBuild)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM skill_versions`); n != 1 {
			t.Errorf("versions stored = %d, want 1", n)
		}
		if n := s.count(t, `SELECT publishes FROM skill_publish_counts`); n != 1 {
			t.Errorf("publishes counted = %d, want 1", n)
		}
	})
}

func TestSkillMonthlyQuota(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e, setPublishLimit(2))

		// Start an hour before the next month begins (UTC).
		now := s.clock.Now().UTC()
		nextMonth := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		s.clock.Set(nextMonth.Add(-time.Hour))
		m := s.proMember(t)

		s.mustPublish(t, m, simpleSkill(t, "quota-a", "First.", "1.0.0"))
		s.mustPublish(t, m, simpleSkill(t, "quota-a", "First.", "1.1.0"))

		res := s.publish(t, m, "application/zip", simpleSkill(t, "quota-b", "Second.", "1.0.0"), "")
		if res.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("third publish = %d %s, want 413", res.status, res.body)
		}
		details := res.envelopeError(t).Details
		if details["limit_type"] != "publishes_per_month" || details["limit"] != float64(2) || details["used"] != float64(2) {
			t.Errorf("quota details = %v", details)
		}
		// The same bytes of a published version do not count.
		if res := s.publish(t, m, "application/zip", simpleSkill(t, "quota-a", "First.", "1.1.0"), ""); res.status != http.StatusOK {
			t.Errorf("republish at the limit = %d %s, want 200", res.status, res.body)
		}

		s.clock.Set(nextMonth.Add(time.Hour))
		if res := s.publish(t, m, "application/zip", simpleSkill(t, "quota-b", "Second.", "1.0.0"), ""); res.status != http.StatusCreated {
			t.Errorf("publish in the next month = %d %s, want 201", res.status, res.body)
		}
	})
}

func TestSkillsNeedProTier(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSkillsServer(t, e)
		core := s.member(t)

		for _, request := range []struct{ method, path string }{
			{"GET", "/v1/skills?q=pdf"},
			{"GET", "/v1/skills/installed"},
			{"POST", "/v1/skills/pdf/install"},
		} {
			res := s.as(t, core, request.method, request.path, "")
			if res.status != http.StatusForbidden {
				t.Fatalf("%s %s as core = %d %s, want 403", request.method, request.path, res.status, res.body)
			}
			problem := res.envelopeError(t)
			if problem.Code != "TIER_REQUIRED" || problem.Details["feature"] != "skills_hub" || problem.Details["required_tier"] != "pro" {
				t.Errorf("%s %s as core = %+v", request.method, request.path, problem)
			}
		}
		res := s.publish(t, core, "application/zip", simpleSkill(t, "notes", "d", "1.0.0"), "")
		if res.status != http.StatusForbidden || res.envelopeError(t).Code != "TIER_REQUIRED" {
			t.Errorf("publish as core = %d %s, want 403 TIER_REQUIRED", res.status, res.body)
		}
	})
}
