package client_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/client"
	"github.com/nexus-suite/nexus/runtime/clock"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckSkillDigest(t *testing.T) {
	tar := []byte("pretend this is a tar")
	sum := sha256.Sum256(tar)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	archive := gzipped(t, tar)

	if err := client.CheckSkillDigest(archive, digest); err != nil {
		t.Errorf("matching digest: %v", err)
	}
	other := sha256.Sum256([]byte("other"))
	if err := client.CheckSkillDigest(archive, "sha256:"+hex.EncodeToString(other[:])); err == nil {
		t.Error("a different digest was accepted")
	}
	if err := client.CheckSkillDigest(tar, digest); err == nil {
		t.Error("an archive that is not gzip was accepted")
	}
	if err := client.CheckSkillDigest(archive, "md5:abc"); err == nil {
		t.Error("a digest of another form was accepted")
	}
}

func TestDownloadSkillChecksDigest(t *testing.T) {
	tar := []byte("tar bytes")
	sum := sha256.Sum256(tar)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	served := gzipped(t, tar)
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusOK, http.Header{"X-Skill-Digest": {digest}}, string(served)
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	archive, err := cl.DownloadSkill(context.Background(), "pdf-tools", "1.0.0+build.1")
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if archive.Digest != digest || !bytes.Equal(archive.Data, served) {
		t.Errorf("archive = %s with %d bytes, want %s with %d", archive.Digest, len(archive.Data), digest, len(served))
	}
	got := rec.all()[0]
	if got.path != "/v1/skills/pdf-tools/versions/1.0.0+build.1/archive" || got.header.Get("Accept") != client.SkillArchiveTarGz {
		t.Errorf("request = %s with Accept %q", got.path, got.header.Get("Accept"))
	}

	served = gzipped(t, []byte("changed in transit"))
	if _, err := cl.DownloadSkill(context.Background(), "pdf-tools", "1.0.0"); err == nil {
		t.Error("an archive whose digest differs was accepted")
	}
}

func TestPublishSkillRetriesAndReportsCreated(t *testing.T) {
	version := `{"data":{"name":"pdf-tools","version":"1.0.0","build_metadata":"","prerelease":false,"latest":true,"yanked":false,"yanked_at":null,"description":"d","license":"","metadata":{},"digest":"sha256:00","size":1,"unpacked_size":1,"files":1,"published_at":"2026-01-02T03:04:05Z"}}`
	rec := newRecorder(t, func(n int, _ recordedRequest) (int, http.Header, string) {
		switch n {
		case 1:
			return http.StatusBadGateway, nil, `{"error":{"code":"INTERNAL_ERROR","message":"bad gateway"}}`
		case 2:
			return http.StatusCreated, nil, version
		default:
			return http.StatusOK, nil, version
		}
	})
	clk := &recordingClock{Fake: clock.NewFake(time.Unix(0, 0))}
	cl := newClient(t, rec.server.URL, clk, 0.5)
	archive := gzipped(t, []byte("x"))

	published, created, err := cl.PublishSkill(context.Background(), archive, client.SkillArchiveTarGz, "1.0.0", nil)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !created || published.Version != "1.0.0" {
		t.Errorf("publish = %s created %t, want 1.0.0 created after one retry", published.Version, created)
	}
	requests := rec.all()
	if len(requests) != 2 {
		t.Fatalf("attempts = %d, want 2: a publish of the same bytes is safe to repeat", len(requests))
	}
	if requests[1].query != "version=1.0.0" || requests[1].header.Get("Content-Type") != client.SkillArchiveTarGz || !bytes.Equal(requests[1].body, archive) {
		t.Errorf("publish request = ?%s %s with %d bytes", requests[1].query, requests[1].header.Get("Content-Type"), len(requests[1].body))
	}

	if _, created, err = cl.PublishSkill(context.Background(), archive, client.SkillArchiveTarGz, "", nil); err != nil || created {
		t.Errorf("second publish created = %t, %v; want an existing version", created, err)
	}
}

func TestSearchSkillsQuery(t *testing.T) {
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusOK, nil, `{"data":{"items":[],"next_cursor":null}}`
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	page, err := cl.SearchSkills(context.Background(), client.SkillSearch{Query: "pdf tools", Sort: "installs", Limit: 5, Cursor: "c1"})
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	if page.NextCursor != nil {
		t.Errorf("next cursor = %v, want nil on the last page", *page.NextCursor)
	}
	query, _ := url.ParseQuery(rec.all()[0].query)
	want := url.Values{"q": {"pdf tools"}, "sort": {"installs"}, "limit": {"5"}, "cursor": {"c1"}}
	if query.Encode() != want.Encode() {
		t.Errorf("query = %s, want %s", query.Encode(), want.Encode())
	}
}
