// Package syncfolder syncs a local folder through the Nexus Sync API with
// client-side encryption. Each file becomes one item of a collection: its
// id is a keyed hash of the file's path, and its payload holds the path,
// mode and content sealed with XChaCha20-Poly1305. The key comes from a
// random master key. The server stores that key only wrapped by a key
// derived from the user's passphrase with argon2id. So another device with
// the passphrase derives the same keys, and the server stores only
// ciphertext.
//
// A state file in the folder records, per file, the item version and
// content hash of the last sync and the change feed's cursor; a write is
// always based on that version, so a change made on another device in the
// meantime is a conflict instead of being overwritten.
package syncfolder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the name of the state file at the folder's root. It is
// never synced.
const StateFile = ".nexus-sync.json"

// stateVersion is the format of the state file.
const stateVersion = 1

// state is the folder's record of its last sync with one server and
// collection.
type state struct {
	Version    int    `json:"version"`
	Server     string `json:"server"`
	Collection string `json:"collection"`
	KeyID      string `json:"key_id"`
	// Cursor is the change feed's position after the last pull.
	Cursor string `json:"cursor"`
	// Files are the synced files by path.
	Files map[string]fileState `json:"files"`
}

// fileState is a file as of its last push or pull.
type fileState struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// SHA256 is the hex digest of the content.
	SHA256 string `json:"sha256"`
}

// loadState reads the folder's state, or returns an empty one for a
// folder that was never synced. A state of another server, collection or
// key is an error, because its versions mean nothing there.
func loadState(dir string, opts Options) (*state, error) {
	fresh := &state{Version: stateVersion, Server: opts.Server, Collection: opts.Collection, KeyID: opts.KeyID, Files: map[string]fileState{}}
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sync state: %w", err)
	}

	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read sync state %s: %w (remove it to sync the folder from scratch)", filepath.Join(dir, StateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("sync state %s has format %d, want %d", filepath.Join(dir, StateFile), st.Version, stateVersion)
	}
	if st.Server != opts.Server || st.Collection != opts.Collection || st.KeyID != opts.KeyID {
		return nil, fmt.Errorf("%s was synced with collection %q and key %q on %s; use those, or remove %s to start over",
			dir, st.Collection, st.KeyID, st.Server, StateFile)
	}
	if st.Files == nil {
		st.Files = map[string]fileState{}
	}
	return &st, nil
}

// save writes the state through a temporary file and a rename, with mode
// 0600.
func (st *state) save(dir string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sync state: %w", err)
	}
	temporary, err := os.CreateTemp(dir, ".nexus-sync-state-*")
	if err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	defer os.Remove(temporary.Name())
	if _, err := temporary.Write(data); err != nil {
		temporary.Close()
		return fmt.Errorf("write sync state: %w", err)
	}
	if err := temporary.Close(); err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	if err := os.Rename(temporary.Name(), filepath.Join(dir, StateFile)); err != nil {
		return fmt.Errorf("write sync state: %w", err)
	}
	return nil
}

// pathOfID returns the path of a synced item id.
func (st *state) pathOfID(id string) (string, bool) {
	for p, f := range st.Files {
		if f.ID == id {
			return p, true
		}
	}
	return "", false
}
