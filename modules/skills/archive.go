package skills

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// archiveFormat is the container of an upload, chosen by its Content-Type.
type archiveFormat int

const (
	formatZip archiveFormat = iota + 1
	formatTarGzip
)

// tarEntryOverhead is the allowance per tar entry for bytes of the
// decompressed stream beyond file data: the 512-byte header, a PAX or GNU
// long-name record of a few KiB and the padding to 512 bytes. The stream is
// bounded by the unpacked limit plus this per entry, because the tar reader
// skips unread data (of a directory entry claiming a size, say) by reading it.
const tarEntryOverhead = 8 << 10

// archiveLimits bound what reading one archive may unpack.
type archiveLimits struct {
	// UnpackedBytes is the largest sum of file sizes, counted while reading.
	UnpackedBytes int64
	// Files is the largest number of entries, files and directories.
	Files int
	// PathBytes is the longest entry path in bytes.
	PathBytes int
}

// archiveFile is one regular file of a skill, its path relative to the
// skill's root folder.
type archiveFile struct {
	Path       string
	Executable bool
	Data       []byte
}

// skillArchive is the validated content of an upload.
type skillArchive struct {
	// Root is the single top-level folder that held SKILL.md, "" when
	// SKILL.md was at the top level. It is not part of the file paths.
	Root string
	// Files are sorted by path, bytewise.
	Files         []archiveFile
	UnpackedBytes int64
}

// manifestData returns the content of SKILL.md.
func (a skillArchive) manifestData() []byte {
	for _, f := range a.Files {
		if f.Path == manifestFile {
			return f.Data
		}
	}
	return nil
}

// archiveError is an upload that is not a safe, well-formed skill archive.
// The handler turns it into a 400 VALIDATION_ERROR with details.field
// "archive", details.reason and, when one entry is at fault, details.path.
type archiveError struct {
	// Reason is a stable code: invalid_archive, unsafe_path, invalid_path,
	// link, special_file, duplicate_path, missing_manifest, unsupported_entry.
	Reason  string
	Path    string
	Message string
}

func (e *archiveError) Error() string { return e.Message }

// limitError is an archive over one of the limits. The handler turns it
// into a 413 QUOTA_EXCEEDED with details.limit_type and details.limit.
type limitError struct {
	// LimitType is archive_unpacked_bytes or archive_files.
	LimitType string
	Limit     int64
}

func (e *limitError) Error() string {
	return fmt.Sprintf("the archive exceeds its %s limit of %d", e.LimitType, e.Limit)
}

func archiveProblem(reason, path, format string, args ...any) *archiveError {
	return &archiveError{Reason: reason, Path: path, Message: fmt.Sprintf(format, args...)}
}

// readArchive unpacks data and checks every entry. It rejects absolute
// paths, "..", "." and empty segments, backslashes, and names that are not
// UTF-8 or contain control characters. It rejects symbolic and hard links,
// devices, FIFOs and sockets. Paths that differ only in case or Unicode
// normalization count as duplicates, because they collide on the file
// systems of macOS and Windows. File sizes are counted while reading and
// never taken from headers, so a compression bomb stops at the unpacked limit.
func readArchive(format archiveFormat, data []byte, limits archiveLimits) (skillArchive, error) {
	c := newCollector(limits)
	var err error
	switch format {
	case formatZip:
		err = c.readZip(data)
	case formatTarGzip:
		err = c.readTarGzip(data)
	default:
		err = fmt.Errorf("read archive: unknown format %d", format)
	}
	if err != nil {
		return skillArchive{}, err
	}
	return c.finish()
}

// collector checks entries as they are read and keeps the files.
type collector struct {
	limits    archiveLimits
	entries   int
	remaining int64
	files     []archiveFile
	// explicit maps the folded paths of the entries read so far, files and
	// directories, to their paths. fileKeys does the same for files only,
	// and dirKeys for every folder that contains a file.
	explicit map[string]string
	fileKeys map[string]string
	dirKeys  map[string]string
}

func newCollector(limits archiveLimits) *collector {
	return &collector{
		limits:    limits,
		remaining: limits.UnpackedBytes,
		explicit:  map[string]string{},
		fileKeys:  map[string]string{},
		dirKeys:   map[string]string{},
	}
}

// entryKind is the kind of an archive entry.
type entryKind int

const (
	entryFile entryKind = iota
	entryDir
	entrySymlink
	entryHardLink
	entrySpecial
	entryUnsupported
)

func (c *collector) readZip(data []byte) error {
	reader, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// ErrInsecurePath comes with a usable reader; the checks below name the path.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return archiveProblem("invalid_archive", "", "the upload is not a valid zip archive: %v", err)
	}
	if len(reader.File) > c.limits.Files {
		return &limitError{LimitType: "archive_files", Limit: int64(c.limits.Files)}
	}

	for _, f := range reader.File {
		mode := f.Mode()
		kind := entryFile
		switch {
		case mode&fs.ModeSymlink != 0:
			kind = entrySymlink
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
			kind = entrySpecial
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			kind = entryDir
		case f.Flags&0x1 != 0:
			// Bit 0 of the general purpose flags marks an encrypted entry.
			kind = entryUnsupported
		}

		var open func() (io.ReadCloser, error)
		if kind == entryFile {
			open = f.Open
		}
		if err := c.add(f.Name, kind, mode&0o111 != 0, open); err != nil {
			return err
		}
	}
	return nil
}

func (c *collector) readTarGzip(data []byte) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return archiveProblem("invalid_archive", "", "the upload is not a valid gzip stream: %v", err)
	}
	defer gz.Close()

	streamLimit := c.limits.UnpackedBytes + int64(c.limits.Files+2)*tarEntryOverhead
	stream := &boundedReader{r: gz, remaining: streamLimit, limitType: "archive_unpacked_bytes", limit: c.limits.UnpackedBytes}
	reader := tar.NewReader(stream)
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var limit *limitError
			if errors.As(err, &limit) {
				return limit
			}
			return archiveProblem("invalid_archive", "", "the upload is not a valid tar.gz archive: %v", err)
		}
		if c.entries >= c.limits.Files {
			return &limitError{LimitType: "archive_files", Limit: int64(c.limits.Files)}
		}

		kind := entryUnsupported
		switch header.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			kind = entryFile
		case tar.TypeDir:
			kind = entryDir
		case tar.TypeSymlink:
			kind = entrySymlink
		case tar.TypeLink:
			kind = entryHardLink
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			kind = entrySpecial
		case tar.TypeXGlobalHeader:
			// A pax global header carries defaults, not a file.
			continue
		}

		open := func() (io.ReadCloser, error) { return io.NopCloser(reader), nil }
		if err := c.add(header.Name, kind, header.Mode&0o111 != 0, open); err != nil {
			return err
		}
	}
}

// add checks one entry and, for a file, reads its data within the
// remaining unpacked budget.
func (c *collector) add(name string, kind entryKind, executable bool, open func() (io.ReadCloser, error)) error {
	c.entries++
	if c.entries > c.limits.Files {
		return &limitError{LimitType: "archive_files", Limit: int64(c.limits.Files)}
	}

	path, err := c.cleanPath(name, kind == entryDir)
	if err != nil {
		return err
	}
	switch kind {
	case entrySymlink:
		return archiveProblem("link", path, "entry %q is a symbolic link; archives may hold only files and directories", path)
	case entryHardLink:
		return archiveProblem("link", path, "entry %q is a hard link; archives may hold only files and directories", path)
	case entrySpecial:
		return archiveProblem("special_file", path, "entry %q is a device, FIFO or socket; archives may hold only files and directories", path)
	case entryUnsupported:
		return archiveProblem("unsupported_entry", path, "entry %q is of a kind this server does not unpack (encrypted, sparse or unknown)", path)
	}
	if path == "" {
		// The "./" entry that tar writes for the folder it was run in.
		return nil
	}

	key := foldPath(path)
	if previous, ok := c.explicit[key]; ok {
		return archiveProblem("duplicate_path", path, "entry %q duplicates %q (paths that differ only in case or Unicode form count as the same)", path, previous)
	}
	c.explicit[key] = path
	if kind == entryDir {
		if file, ok := c.fileKeys[key]; ok {
			return archiveProblem("duplicate_path", path, "directory %q has the path of the file %q", path, file)
		}
		return nil
	}
	if err := c.claimFile(path, key); err != nil {
		return err
	}

	data, err := c.readData(path, open)
	if err != nil {
		return err
	}
	c.files = append(c.files, archiveFile{Path: path, Executable: executable, Data: data})
	return nil
}

// claimFile records the file and its parent folders, rejecting a file
// whose path is also a folder of another file.
func (c *collector) claimFile(path, key string) error {
	if dir, ok := c.dirKeys[key]; ok {
		return archiveProblem("duplicate_path", path, "file %q has the path of the folder %q", path, dir)
	}
	c.fileKeys[key] = path
	for i := strings.LastIndexByte(key, '/'); i > 0; i = strings.LastIndexByte(key[:i], '/') {
		parent := key[:i]
		if file, ok := c.fileKeys[parent]; ok {
			return archiveProblem("duplicate_path", path, "file %q lies below the file %q", path, file)
		}
		c.dirKeys[parent] = path[:i]
	}
	return nil
}

// readData reads a file through a reader bounded by the remaining budget
// plus one byte, so that going over is detected without reading further.
func (c *collector) readData(path string, open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, archiveProblem("invalid_archive", path, "entry %q cannot be read: %v", path, err)
	}
	defer rc.Close()

	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rc, c.remaining+1))
	var limit *limitError
	switch {
	case errors.As(err, &limit):
		return nil, limit
	case err != nil:
		return nil, archiveProblem("invalid_archive", path, "entry %q cannot be read: %v", path, err)
	case n > c.remaining:
		return nil, &limitError{LimitType: "archive_unpacked_bytes", Limit: c.limits.UnpackedBytes}
	}
	c.remaining -= n
	return buf.Bytes(), nil
}

// cleanPath checks an entry name and returns it without a leading "./"
// and, for a directory, without the trailing slash.
func (c *collector) cleanPath(name string, dir bool) (string, error) {
	if !utf8.ValidString(name) {
		return "", archiveProblem("invalid_path", strings.ToValidUTF8(name, "\uFFFD"), "an entry name is not valid UTF-8")
	}
	if len(name) > c.limits.PathBytes {
		return "", archiveProblem("invalid_path", name, "entry path has %d bytes, the maximum is %d", len(name), c.limits.PathBytes)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", archiveProblem("invalid_path", name, "entry path %q holds a control character", name)
		}
	}
	if strings.Contains(name, `\`) {
		return "", archiveProblem("unsafe_path", name, "entry path %q holds a backslash", name)
	}
	if strings.HasPrefix(name, "/") || hasDriveLetter(name) {
		return "", archiveProblem("unsafe_path", name, "entry path %q is absolute", name)
	}

	path := strings.TrimPrefix(name, "./")
	if dir || strings.HasSuffix(path, "/") {
		path = strings.TrimSuffix(path, "/")
	}
	if path == "" || path == "." {
		return "", nil
	}
	for segment := range strings.SplitSeq(path, "/") {
		switch segment {
		case "..":
			return "", archiveProblem("unsafe_path", name, "entry path %q climbs out of the archive with ..", name)
		case "", ".":
			return "", archiveProblem("invalid_path", name, "entry path %q has an empty or . segment", name)
		}
	}
	return path, nil
}

// hasDriveLetter reports whether name starts like a Windows absolute path, C:.
func hasDriveLetter(name string) bool {
	return len(name) >= 2 && name[1] == ':' &&
		(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z')
}

// foldPath is the key under which two paths collide on a file system that
// ignores case and normalizes Unicode.
func foldPath(path string) string {
	return strings.ToLower(norm.NFC.String(path))
}

// finish finds the skill's root, where SKILL.md is, and returns the files
// below it sorted by path.
func (c *collector) finish() (skillArchive, error) {
	if len(c.files) == 0 {
		return skillArchive{}, archiveProblem("missing_manifest", "", "the archive holds no files, expected SKILL.md at its root")
	}

	root := ""
	if !c.hasFile(manifestFile) {
		first, _, _ := strings.Cut(c.files[0].Path, "/")
		for _, f := range c.files {
			if !strings.HasPrefix(f.Path, first+"/") {
				first = ""
				break
			}
		}
		if first == "" || !c.hasFile(first+"/"+manifestFile) {
			return skillArchive{}, archiveProblem("missing_manifest", "", "SKILL.md is missing at the archive's root (or in its single top-level folder)")
		}
		root = first
	}

	out := skillArchive{Root: root, Files: c.files, UnpackedBytes: c.limits.UnpackedBytes - c.remaining}
	if root != "" {
		for i := range out.Files {
			out.Files[i].Path = strings.TrimPrefix(out.Files[i].Path, root+"/")
		}
	}
	slices.SortFunc(out.Files, func(a, b archiveFile) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func (c *collector) hasFile(path string) bool {
	for _, f := range c.files {
		if f.Path == path {
			return true
		}
	}
	return false
}

// boundedReader returns a *limitError once more than remaining bytes
// have been read through it.
type boundedReader struct {
	r         io.Reader
	remaining int64
	limitType string
	limit     int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, &limitError{LimitType: b.limitType, Limit: b.limit}
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	b.remaining -= int64(n)
	return n, err
}

// canonicalArchive is the form in which a version is stored and served.
type canonicalArchive struct {
	// Digest is "sha256:" and the hex SHA-256 of the uncompressed tar.
	Digest string
	// Gzip is the tar compressed with gzip, as stored and served.
	Gzip []byte
}

// canonicalEpoch is the modification time of every canonical tar entry.
var canonicalEpoch = time.Unix(0, 0)

// buildCanonical writes the files as a tar with fixed metadata, in the
// order of a.Files (sorted by path). Every entry is a regular file with
// mode 0755 when it had an executable bit and 0644 otherwise, uid and gid
// 0, no user or group names and modification time 0. Folders are implied
// by the paths, so empty folders are dropped. The digest covers that tar,
// so two uploads with the same files give the same digest whatever their
// container (zip or tar.gz), entry order, timestamps, owners or root folder.
func buildCanonical(a skillArchive) (canonicalArchive, error) {
	var tarBytes bytes.Buffer
	tw := tar.NewWriter(&tarBytes)
	for _, f := range a.Files {
		mode := int64(0o644)
		if f.Executable {
			mode = 0o755
		}
		header := &tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: mode, Size: int64(len(f.Data)), ModTime: canonicalEpoch}
		if err := tw.WriteHeader(header); err != nil {
			return canonicalArchive{}, fmt.Errorf("write canonical tar header of %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return canonicalArchive{}, fmt.Errorf("write canonical tar entry %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return canonicalArchive{}, fmt.Errorf("close canonical tar: %w", err)
	}
	sum := sha256.Sum256(tarBytes.Bytes())

	var compressed bytes.Buffer
	gz, err := gzip.NewWriterLevel(&compressed, gzip.BestCompression)
	if err != nil {
		return canonicalArchive{}, fmt.Errorf("compress canonical tar: %w", err)
	}
	if _, err := gz.Write(tarBytes.Bytes()); err != nil {
		return canonicalArchive{}, fmt.Errorf("compress canonical tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return canonicalArchive{}, fmt.Errorf("compress canonical tar: %w", err)
	}
	return canonicalArchive{Digest: "sha256:" + hex.EncodeToString(sum[:]), Gzip: compressed.Bytes()}, nil
}
