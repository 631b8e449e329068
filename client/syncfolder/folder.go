package syncfolder

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nexus-suite/nexus/client"
)

// Defaults of Options.
const (
	DefaultCollection = "files"
	DefaultKeyID      = "nexus-cli"
)

// temporaryPrefix starts the names of files that a pull writes before it
// renames them into place; push skips them.
const temporaryPrefix = ".nexus-sync-tmp-"

// Options configure a push or a pull.
type Options struct {
	// Dir is the local folder.
	Dir string
	// Server is the server's address, recorded in the state file.
	Server     string
	Collection string
	// KeyID names the key envelope under /v1/sync/keys.
	KeyID string
	// Passphrase returns the passphrase. create is true when no key exists
	// yet and the passphrase will create it, so a prompt can ask twice.
	Passphrase func(create bool) (string, error)
	// Force makes a push overwrite the server's newer versions, and a pull
	// overwrite the local changes that conflict with newer server versions,
	// reading the whole feed again.
	Force bool
	// Progress, when set, receives the bytes as files are sent or written.
	Progress Progress
}

// Progress follows a transfer.
type Progress interface {
	// Begin starts a transfer of total bytes; total is 0 when unknown.
	Begin(label string, total int64)
	// Advance adds n bytes done.
	Advance(n int64)
	// End finishes the transfer.
	End()
}

type noProgress struct{}

func (noProgress) Begin(string, int64) {}
func (noProgress) Advance(int64)       {}
func (noProgress) End()                {}

// Conflict is a file whose change was not applied because the other side
// changed it too.
type Conflict struct {
	Path string `json:"path"`
	// BaseVersion is the version the local copy is based on, 0 for a file
	// that was never synced.
	BaseVersion int64 `json:"base_version"`
	// ServerVersion is the server's version, 0 when the item does not
	// exist there.
	ServerVersion int64 `json:"server_version"`
	// ServerDeleted is true when the server's version is a tombstone.
	ServerDeleted bool `json:"server_deleted"`
	// Reason is what to do next.
	Reason string `json:"reason"`
}

// Result lists what a push or pull did, by file path.
type Result struct {
	Written   []string   `json:"written"`
	Deleted   []string   `json:"deleted"`
	Unchanged int        `json:"unchanged"`
	Bytes     int64      `json:"bytes"`
	Conflicts []Conflict `json:"conflicts"`
	Skipped   []Skipped  `json:"skipped"`
}

// newResult returns a Result whose lists encode as [] rather than null.
func newResult() Result {
	return Result{Written: []string{}, Deleted: []string{}, Conflicts: []Conflict{}, Skipped: []Skipped{}}
}

// Skipped is a local entry that is not synced, with the reason.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("no folder given")
	}
	if o.Collection == "" {
		o.Collection = DefaultCollection
	}
	if o.KeyID == "" {
		o.KeyID = DefaultKeyID
	}
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	if o.Passphrase == nil {
		return errors.New("no passphrase source given")
	}
	info, err := os.Stat(o.Dir)
	if err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("sync folder %s is not a directory", o.Dir)
	}
	return nil
}

// openKeys reads the key envelope and opens it with the passphrase. With
// create, a missing envelope is created; without, it is an error.
func openKeys(ctx context.Context, cl *client.Client, opts Options, create bool) (*Keys, error) {
	stored, err := cl.GetSyncKey(ctx, opts.KeyID)
	switch {
	case err == nil:
		passphrase, err := opts.Passphrase(false)
		if err != nil {
			return nil, err
		}
		return OpenEnvelope(opts.KeyID, stored.Envelope, passphrase)
	case !client.IsCode(err, "NOT_FOUND"):
		return nil, fmt.Errorf("read sync key %s: %w", opts.KeyID, err)
	case !create:
		return nil, fmt.Errorf("the server has no sync key %q yet; push a folder first", opts.KeyID)
	}

	passphrase, err := opts.Passphrase(true)
	if err != nil {
		return nil, err
	}
	encoded, keys, err := NewEnvelope(opts.KeyID, passphrase)
	if err != nil {
		return nil, err
	}
	_, err = cl.PutSyncKey(ctx, opts.KeyID, encoded, client.IfNoneMatch())
	if current, conflict := client.SyncKeyConflictOf(err); conflict && current != nil {
		// Another device created the key first; use that one.
		return OpenEnvelope(opts.KeyID, current.Envelope, passphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("store sync key %s: %w", opts.KeyID, err)
	}
	return keys, nil
}

// localFile is a regular file of the folder.
type localFile struct {
	path string
	mode uint32
	size int64
}

// scan lists the folder's regular files by slash path. Symbolic links and
// other special files are skipped and reported, and so are the state file
// and a pull's temporary files.
func scan(dir string) (map[string]localFile, []Skipped, error) {
	files := map[string]localFile{}
	var skipped []Skipped
	err := filepath.WalkDir(dir, func(name string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		slashPath := filepath.ToSlash(rel)
		if slashPath == "." {
			return nil
		}
		base := path.Base(slashPath)
		if slashPath == StateFile || strings.HasPrefix(base, ".nexus-sync-state-") || strings.HasPrefix(base, temporaryPrefix) {
			return nil
		}
		switch {
		case entry.IsDir():
			return nil
		case !entry.Type().IsRegular():
			skipped = append(skipped, Skipped{Path: slashPath, Reason: "not a regular file (links and devices are not synced)"})
			return nil
		}
		if err := CheckPath(slashPath); err != nil {
			skipped = append(skipped, Skipped{Path: slashPath, Reason: err.Error()})
			return nil
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		mode := uint32(0o644)
		if info.Mode().Perm()&0o111 != 0 {
			mode = 0o755
		}
		files[slashPath] = localFile{path: slashPath, mode: mode, size: info.Size()}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return files, skipped, nil
}

// hashFile returns the hex SHA-256 of the folder's file at name, reading
// it in pieces.
func hashFile(root *os.Root, name string) (string, error) {
	file, err := root.Open(name)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	defer file.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, file); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

func digest(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// randomSuffix names a temporary file.
func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isStatus reports whether err is an API error with the HTTP status.
func isStatus(err error, status int) bool {
	var apiErr *client.Error
	return errors.As(err, &apiErr) && apiErr.Status == status
}
