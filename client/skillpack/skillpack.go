// Package skillpack packs a skill folder into the tar.gz that the Skills
// Hub takes, and unpacks a downloaded archive into a folder without ever
// writing outside it.
package skillpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ManifestFile is the file at a skill's root that describes it.
const ManifestFile = "SKILL.md"

// Limits of Unpack: the largest limits a server may configure
// (modules.skills.max_files and max_unpacked_bytes).
const (
	maxEntries       = 10_000
	maxUnpackedBytes = 256 << 20
)

// Skipped is a folder entry that Pack left out, with the reason.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Pack writes the regular files of dir into a tar.gz with SKILL.md at its
// root, in path order, with mode 0755 for executables and 0644 otherwise.
// Version-control folders (.git, .hg, .svn) are left out, and so are
// symbolic links and special files, which the server rejects; both are
// listed in skipped.
func Pack(dir string) (archive []byte, skipped []Skipped, err error) {
	if info, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil || !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s has no %s at its root; a skill folder needs one", dir, ManifestFile)
	}

	var files []string
	err = filepath.WalkDir(dir, func(name string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case entry.IsDir() && (entry.Name() == ".git" || entry.Name() == ".hg" || entry.Name() == ".svn"):
			skipped = append(skipped, Skipped{Path: rel, Reason: "version-control folder"})
			return filepath.SkipDir
		case entry.IsDir():
			return nil
		case !entry.Type().IsRegular():
			skipped = append(skipped, Skipped{Path: rel, Reason: "not a regular file (the Skills Hub rejects links and devices)"})
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	sort.Strings(files)

	var buf bytes.Buffer
	zipper := gzip.NewWriter(&buf)
	writer := tar.NewWriter(zipper)
	for _, rel := range files {
		if err := addFile(writer, dir, rel); err != nil {
			return nil, nil, err
		}
	}
	if err := writer.Close(); err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := zipper.Close(); err != nil {
		return nil, nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return buf.Bytes(), skipped, nil
}

func addFile(writer *tar.Writer, dir, rel string) error {
	file, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("pack %s: %w", rel, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("pack %s: %w", rel, err)
	}
	mode := int64(0o644)
	if info.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	header := &tar.Header{Name: rel, Mode: mode, Size: info.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := writer.WriteHeader(header); err != nil {
		return fmt.Errorf("pack %s: %w", rel, err)
	}
	// A file that grows while it is read would break the tar, so copy
	// exactly the size in the header.
	if _, err := io.CopyN(writer, file, info.Size()); err != nil {
		return fmt.Errorf("pack %s: %w", rel, err)
	}
	return nil
}

// Unpack writes the files of a tar.gz into dir, replacing what dir held.
// It unpacks into a new folder beside dir first and swaps it in at the
// end, so a failed unpack leaves dir as it was. Entries must be regular
// files or folders with clean relative paths. Any other entry is an
// error, and so are more than 10,000 entries or 256 MiB of file data.
func Unpack(archive []byte, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".unpack-*")
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", parent, err)
	}
	defer os.RemoveAll(staging)

	if err := extract(archive, staging); err != nil {
		return err
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return err
	}

	previous := staging + ".previous"
	if err := os.Rename(dir, previous); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(staging, dir); err != nil {
		_ = os.Rename(previous, dir)
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	return os.RemoveAll(previous)
}

// extract writes the archive's entries under dir through an os.Root, so
// no entry can leave dir, also not through a link.
func extract(archive []byte, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	unzipped, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return fmt.Errorf("the archive is not gzip: %w", err)
	}
	reader := tar.NewReader(unzipped)

	var entries int
	var unpacked int64
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		entries++
		if entries > maxEntries {
			return fmt.Errorf("the archive has more than %d entries", maxEntries)
		}
		name := strings.TrimSuffix(header.Name, "/")
		if err := checkEntryPath(name); err != nil {
			return err
		}

		switch header.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}
		case tar.TypeReg:
			unpacked += header.Size
			if header.Size < 0 || unpacked > maxUnpackedBytes {
				return fmt.Errorf("the archive unpacks to more than %d bytes", maxUnpackedBytes)
			}
			if err := writeEntry(root, name, header, reader); err != nil {
				return err
			}
		default:
			return fmt.Errorf("the archive entry %s is not a regular file or folder", name)
		}
	}
}

func writeEntry(root *os.Root, name string, header *tar.Header, reader io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	}
	perm := os.FileMode(0o644)
	if header.Mode&0o111 != 0 {
		perm = 0o755
	}
	file, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	if _, err := io.CopyN(file, reader, header.Size); err != nil {
		file.Close()
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	return file.Close()
}

// checkEntryPath accepts a clean, relative, slash-separated path.
func checkEntryPath(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") || path.IsAbs(name) || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("the archive entry %q is not a clean relative path", name)
	}
	return nil
}
