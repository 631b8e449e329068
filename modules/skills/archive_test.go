package skills

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"hash/crc32"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"time"
)

// entry is one member of a test archive.
type entry struct {
	name string
	body string
	mode fs.FileMode
	// typeflag overrides the tar type; link is the target of a link.
	typeflag byte
	link     string
}

const validManifest = "---\nname: pdf-tools\ndescription: Fill PDF forms.\nversion: 1.0.0\n---\n# PDF tools\n"

var testLimits = archiveLimits{UnpackedBytes: 1 << 20, Files: 20, PathBytes: 128}

func zipOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		header := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
		if e.mode != 0 {
			header.SetMode(e.mode)
		}
		f, err := w.CreateHeader(header)
		if err != nil {
			t.Fatalf("zip entry %q: %v", e.name, err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			t.Fatalf("zip entry %q: %v", e.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

func tarGzOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := tar.NewWriter(gz)
	for _, e := range entries {
		header := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1714560000, 0), Uid: 501, Uname: "ada"}
		if e.mode != 0 {
			header.Mode = int64(e.mode.Perm())
		}
		if e.mode&fs.ModeDir != 0 {
			e.typeflag = tar.TypeDir
		}
		if e.typeflag != 0 {
			header.Typeflag, header.Linkname, header.Size = e.typeflag, e.link, 0
		}
		if err := w.WriteHeader(header); err != nil {
			t.Fatalf("tar entry %q: %v", e.name, err)
		}
		if header.Size > 0 {
			if _, err := w.Write([]byte(e.body)); err != nil {
				t.Fatalf("tar entry %q: %v", e.name, err)
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

func TestReadArchiveZipAndTarGiveOneDigest(t *testing.T) {
	files := []entry{
		{name: "pdf-tools/SKILL.md", body: validManifest},
		{name: "pdf-tools/scripts/", mode: fs.ModeDir | 0o755},
		{name: "pdf-tools/scripts/fill.py", body: "print('fill')\n", mode: 0o755},
		{name: "pdf-tools/reference.md", body: "# Reference\n"},
	}
	reversed := []entry{files[3], files[2], files[0]}
	flat := []entry{
		{name: "./", typeflag: tar.TypeDir},
		{name: "./reference.md", body: "# Reference\n"},
		{name: "./SKILL.md", body: validManifest},
		{name: "./scripts/fill.py", body: "print('fill')\n", mode: 0o755},
	}

	var digests []string
	for label, upload := range map[string]struct {
		format archiveFormat
		data   []byte
	}{
		"zip":               {formatZip, zipOf(t, files...)},
		"tar.gz":            {formatTarGzip, tarGzOf(t, files...)},
		"tar.gz reversed":   {formatTarGzip, tarGzOf(t, reversed...)},
		"tar.gz, no folder": {formatTarGzip, tarGzOf(t, flat...)},
	} {
		archive, err := readArchive(upload.format, upload.data, testLimits)
		if err != nil {
			t.Fatalf("%s: readArchive: %v", label, err)
		}
		var paths []string
		for _, f := range archive.Files {
			paths = append(paths, f.Path)
		}
		if got := strings.Join(paths, ","); got != "SKILL.md,reference.md,scripts/fill.py" {
			t.Errorf("%s: paths = %s", label, got)
		}
		if !archive.Files[2].Executable || archive.Files[0].Executable {
			t.Errorf("%s: executable bits = %v, %v", label, archive.Files[0].Executable, archive.Files[2].Executable)
		}
		canonical, err := buildCanonical(archive)
		if err != nil {
			t.Fatalf("%s: buildCanonical: %v", label, err)
		}
		digests = append(digests, canonical.Digest)
	}
	for _, digest := range digests[1:] {
		if digest != digests[0] {
			t.Errorf("digests differ for the same files: %v", digests)
		}
	}
	if !strings.HasPrefix(digests[0], "sha256:") || len(digests[0]) != len("sha256:")+64 {
		t.Errorf("digest = %q", digests[0])
	}

	changed, err := readArchive(formatZip, zipOf(t, entry{name: "SKILL.md", body: validManifest + "more\n"}), testLimits)
	if err != nil {
		t.Fatalf("readArchive: %v", err)
	}
	other, _ := buildCanonical(changed)
	if other.Digest == digests[0] {
		t.Error("other content has the same digest")
	}
}

func TestReadArchiveRoot(t *testing.T) {
	archive, err := readArchive(formatZip, zipOf(t, entry{name: "pdf-tools/SKILL.md", body: validManifest}), testLimits)
	if err != nil {
		t.Fatalf("readArchive: %v", err)
	}
	if archive.Root != "pdf-tools" {
		t.Errorf("root = %q, want pdf-tools", archive.Root)
	}
	if string(archive.manifestData()) != validManifest {
		t.Errorf("SKILL.md = %q", archive.manifestData())
	}
}

// TestReadArchiveRejects checks every entry rule in both containers
// where the container can express the entry.
func TestReadArchiveRejects(t *testing.T) {
	skill := entry{name: "SKILL.md", body: validManifest}
	cases := []struct {
		name    string
		entries []entry
		reason  string
		zipToo  bool
	}{
		{"parent segment", []entry{skill, {name: "../evil.sh", body: "x"}}, "unsafe_path", true},
		{"nested parent segment", []entry{skill, {name: "docs/../../evil.sh", body: "x"}}, "unsafe_path", true},
		{"absolute path", []entry{skill, {name: "/etc/cron.d/evil", body: "x"}}, "unsafe_path", true},
		{"drive letter", []entry{skill, {name: "C:/evil", body: "x"}}, "unsafe_path", true},
		{"backslash", []entry{skill, {name: `..\evil`, body: "x"}}, "unsafe_path", true},
		{"empty segment", []entry{skill, {name: "docs//a.md", body: "x"}}, "invalid_path", true},
		{"control character", []entry{skill, {name: "a\nb.md", body: "x"}}, "invalid_path", true},
		{"not UTF-8", []entry{skill, {name: "caf\xe9.md", body: "x"}}, "invalid_path", true},
		{"path too long", []entry{skill, {name: strings.Repeat("a", 129), body: "x"}}, "invalid_path", true},
		{"symbolic link", []entry{skill, {name: "link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777, typeflag: tar.TypeSymlink, link: "/etc/passwd"}}, "link", true},
		{"hard link", []entry{skill, {name: "hard", typeflag: tar.TypeLink, link: "SKILL.md"}}, "link", false},
		{"character device", []entry{skill, {name: "tty", typeflag: tar.TypeChar}}, "special_file", false},
		{"FIFO", []entry{skill, {name: "pipe", typeflag: tar.TypeFifo, mode: fs.ModeNamedPipe | 0o644}}, "special_file", true},
		{"duplicate path", []entry{skill, {name: "a.md", body: "1"}, {name: "a.md", body: "2"}}, "duplicate_path", true},
		{"duplicate in other case", []entry{skill, {name: "Docs/A.md", body: "1"}, {name: "docs/a.md", body: "2"}}, "duplicate_path", true},
		{"duplicate in other Unicode form", []entry{skill, {name: "caf\u00e9.md", body: "1"}, {name: "cafe\u0301.md", body: "2"}}, "duplicate_path", true},
		{"file below a file", []entry{skill, {name: "a", body: "1"}, {name: "a/b", body: "2"}}, "duplicate_path", true},
		{"missing SKILL.md", []entry{{name: "README.md", body: "x"}}, "missing_manifest", true},
		{"SKILL.md too deep", []entry{{name: "a/b/SKILL.md", body: validManifest}}, "missing_manifest", true},
		{"two top folders", []entry{{name: "a/SKILL.md", body: validManifest}, {name: "b/x.md", body: "x"}}, "missing_manifest", true},
	}
	for _, tc := range cases {
		formats := map[string][]byte{"tar.gz": tarGzOf(t, tc.entries...)}
		if tc.zipToo {
			formats["zip"] = zipOf(t, tc.entries...)
		}
		for label, data := range formats {
			t.Run(tc.name+"/"+label, func(t *testing.T) {
				format := formatTarGzip
				if label == "zip" {
					format = formatZip
				}
				_, err := readArchive(format, data, testLimits)
				var problem *archiveError
				if !errors.As(err, &problem) {
					t.Fatalf("readArchive = %v, want an *archiveError", err)
				}
				if problem.Reason != tc.reason {
					t.Errorf("reason = %q (%s), want %q", problem.Reason, problem.Message, tc.reason)
				}
			})
		}
	}
}

func TestReadArchiveRejectsGarbage(t *testing.T) {
	for label, format := range map[string]archiveFormat{"zip": formatZip, "tar.gz": formatTarGzip} {
		_, err := readArchive(format, []byte("this is no archive"), testLimits)
		var problem *archiveError
		if !errors.As(err, &problem) || problem.Reason != "invalid_archive" {
			t.Errorf("%s: readArchive of text = %v, want invalid_archive", label, err)
		}
	}
}

func TestReadArchiveLimits(t *testing.T) {
	skill := entry{name: "SKILL.md", body: validManifest}
	many := []entry{skill}
	for i := range testLimits.Files {
		many = append(many, entry{name: "f" + strings.Repeat("x", i), body: "x"})
	}
	big := []entry{skill, {name: "big.bin", body: strings.Repeat("z", int(testLimits.UnpackedBytes))}}

	cases := []struct {
		name      string
		entries   []entry
		limitType string
	}{
		{"too many files", many, "archive_files"},
		{"too many bytes", big, "archive_unpacked_bytes"},
	}
	for _, tc := range cases {
		for label, upload := range map[string]struct {
			format archiveFormat
			data   []byte
		}{"zip": {formatZip, zipOf(t, tc.entries...)}, "tar.gz": {formatTarGzip, tarGzOf(t, tc.entries...)}} {
			_, err := readArchive(upload.format, upload.data, testLimits)
			var limit *limitError
			if !errors.As(err, &limit) || limit.LimitType != tc.limitType {
				t.Errorf("%s, %s: readArchive = %v, want a %s limit error", tc.name, label, err, tc.limitType)
			}
		}
	}
}

// zeroChunk is deflate data of 16 MiB of zeros that ends on a sync flush,
// so copies of it can be concatenated into one stream.
func zeroChunk(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatalf("flate writer: %v", err)
	}
	zeros := make([]byte, 1<<20)
	for range 16 {
		if _, err := w.Write(zeros); err != nil {
			t.Fatalf("deflate zeros: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush deflate: %v", err)
	}
	return buf.Bytes()
}

// zipBomb returns a zip whose one entry inflates to 1 GiB of zeros. The
// header declares declaredSize, which may lie. Nothing of 1 GiB is ever
// held in memory: the deflate data repeats a chunk of 16 MiB of zeros.
func zipBomb(t *testing.T, declaredSize uint64) []byte {
	t.Helper()
	chunk := zeroChunk(t)
	var stream bytes.Buffer
	for range 64 {
		stream.Write(chunk)
	}
	stream.Write([]byte{0x03, 0x00}) // an empty final block

	crc := crc32.NewIEEE()
	zeros := make([]byte, 1<<20)
	for range 1024 {
		crc.Write(zeros)
	}

	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	skill, _ := w.Create("SKILL.md")
	skill.Write([]byte(validManifest))
	header := &zip.FileHeader{Name: "zeros.bin", Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(stream.Len()), UncompressedSize64: declaredSize}
	raw, err := w.CreateRaw(header)
	if err != nil {
		t.Fatalf("create raw entry: %v", err)
	}
	raw.Write(stream.Bytes())
	if err := w.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

// tarGzBomb returns a tar.gz with one entry of 1 GiB of zeros, made of
// concatenated gzip members so that it is built without compressing 1 GiB.
func tarGzBomb(t *testing.T) []byte {
	t.Helper()
	var header bytes.Buffer
	tw := tar.NewWriter(&header)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Size: 1 << 30, Typeflag: tar.TypeReg}); err != nil {
		t.Fatalf("tar header: %v", err)
	}
	// The tar writer is left open: what follows the header is the data.

	member := func(data []byte) []byte {
		var buf bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		gz.Write(data)
		gz.Close()
		return buf.Bytes()
	}
	var out bytes.Buffer
	out.Write(member(header.Bytes()))
	zeros := member(make([]byte, 16<<20))
	for range 64 {
		out.Write(zeros)
	}
	out.Write(member(make([]byte, 1024))) // the end-of-archive blocks
	return out.Bytes()
}

func TestReadArchiveStopsBombs(t *testing.T) {
	limits := archiveLimits{UnpackedBytes: 30 << 20, Files: 500, PathBytes: 512}
	bombs := []struct {
		name   string
		format archiveFormat
		data   []byte
	}{
		{"zip declaring 1 GiB", formatZip, zipBomb(t, 1<<30)},
		{"zip declaring 1 KiB", formatZip, zipBomb(t, 1<<10)},
		{"tar.gz", formatTarGzip, tarGzBomb(t)},
	}
	for _, bomb := range bombs {
		t.Run(bomb.name, func(t *testing.T) {
			if len(bomb.data) > 4<<20 {
				t.Fatalf("the bomb is %d bytes compressed, expected a few hundred KiB", len(bomb.data))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := readArchive(bomb.format, bomb.data, limits)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 256<<20 {
				t.Errorf("reading the bomb allocated %d MiB, want well under the 1 GiB it expands to", allocated>>20)
			}

			var limit *limitError
			var problem *archiveError
			switch {
			case errors.As(err, &limit):
			case errors.As(err, &problem) && problem.Reason == "invalid_archive":
				// A zip whose header understates the size fails the zip
				// reader's own size check before the limit.
			default:
				t.Fatalf("readArchive = %v, want a limit error", err)
			}
			t.Logf("refused after %s: %v", elapsed, err)
		})
	}
}
