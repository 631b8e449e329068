package skillpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string, mode os.FileMode) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	write(t, src, "SKILL.md", "---\nname: demo\ndescription: d\n---\nbody\n", 0o644)
	write(t, src, "scripts/run.sh", "#!/bin/sh\n", 0o755)
	write(t, src, ".git/HEAD", "ref", 0o644)
	if err := os.Symlink("SKILL.md", filepath.Join(src, "link.md")); err != nil {
		t.Fatal(err)
	}

	archive, skipped, err := Pack(src)
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped = %+v, want .git and the link", skipped)
	}

	dest := filepath.Join(t.TempDir(), "skills", "demo")
	write(t, dest, "stale.txt", "from an older version", 0o644)
	if err := Unpack(archive, dest); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "SKILL.md")); !strings.Contains(string(got), "name: demo") {
		t.Errorf("SKILL.md = %q", got)
	}
	if info, err := os.Stat(filepath.Join(dest, "scripts/run.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v, mode %v; want 0755", err, info.Mode())
	}
	for _, excluded := range []string{"stale.txt", ".git", "link.md"} {
		if _, err := os.Lstat(filepath.Join(dest, excluded)); !os.IsNotExist(err) {
			t.Errorf("%s in the unpacked folder: %v, want absent", excluded, err)
		}
	}
}

func TestPackNeedsManifest(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "README.md", "x", 0o644)
	if _, _, err := Pack(dir); err == nil || !strings.Contains(err.Error(), ManifestFile) {
		t.Errorf("pack without SKILL.md: err = %v", err)
	}
}

func tarGz(t *testing.T, headers ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zipper := gzip.NewWriter(&buf)
	writer := tar.NewWriter(zipper)
	for _, h := range headers {
		if err := writer.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := writer.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	writer.Close()
	zipper.Close()
	return buf.Bytes()
}

func TestUnpackRejectsUnsafeEntries(t *testing.T) {
	cases := map[string]*tar.Header{
		"parent":   {Name: "../escape.txt", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"absolute": {Name: "/tmp/escape.txt", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"inner":    {Name: "a/../../escape.txt", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
		"symlink":  {Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		"hardlink": {Name: "hard", Typeflag: tar.TypeLink, Linkname: "SKILL.md"},
	}
	for name, header := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "skills", "demo")
			archive := tarGz(t, &tar.Header{Name: "SKILL.md", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}, header)
			if err := Unpack(archive, dest); err == nil {
				t.Fatal("the archive was unpacked")
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("a failed unpack left %s: %v", dest, err)
			}
			if _, err := os.Stat(filepath.Join(base, "skills", "escape.txt")); !os.IsNotExist(err) {
				t.Error("an entry was written outside the folder")
			}
		})
	}
}
