// Package keyring holds the secrets that nexus keeps at rest: the master key
// that seals them, and the RSA keys that sign access tokens, stored in the
// signing_keys table and published as a JSON Web Key Set.
package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/nexus-suite/nexus/configs"
)

// MasterKeySize is the length of the master key in bytes (AES-256).
const MasterKeySize = 32

// defaultMasterKeyFile is the master key's file name inside the data directory.
const defaultMasterKeyFile = "master.key"

// LoadMasterKey returns the 32-byte master key. When cfg.MasterKey is set
// (from the config file or the environment), it is decoded from base64.
// Otherwise the key is read from cfg.MasterKeyFile, or <dataDir>/master.key
// when that is empty. The file contains the key in base64 on one line.
// A missing file is generated from crypto/rand with mode 0600 in a
// directory created with mode 0700, and logged with slog.Default.
//
// It returns an error when the key does not decode to 32 bytes, and, except
// on Windows, when the file can be read by its group or by others.
func LoadMasterKey(cfg configs.Security, dataDir string) ([]byte, error) {
	if cfg.MasterKey != "" {
		key, err := decodeMasterKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("decode security.master_key: %w", err)
		}
		return key, nil
	}

	path := cfg.MasterKeyFile
	if path == "" {
		path = filepath.Join(dataDir, defaultMasterKeyFile)
	}

	key, err := readMasterKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createMasterKeyFile(path)
	}
	return key, err
}

// decodeMasterKey accepts standard or URL-safe base64, padded or not.
func decodeMasterKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)

	var key []byte
	var err error
	for _, encoding := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		key, err = encoding.DecodeString(text)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid base64; generate a key with `openssl rand -base64 %d`", MasterKeySize)
	}
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("key is %d bytes, expected %d; generate one with `openssl rand -base64 %d`",
			len(key), MasterKeySize, MasterKeySize)
	}
	return key, nil
}

func readMasterKeyFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat master key file: %w", err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("master key file %s is a directory", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o and can be read by group or others; run `chmod 600 %s`",
			path, info.Mode().Perm(), path)
	}

	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}

	key, err := decodeMasterKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("decode master key file %s: %w", path, err)
	}
	return key, nil
}

// createMasterKeyFile writes a new key to a temporary file and links it into
// place, so a reader never sees a partial file and two processes starting at
// once keep the key of whichever linked first.
func createMasterKeyFile(path string) ([]byte, error) {
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create master key directory: %w", err)
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())

	if err := writeKeyFile(tmp, key); err != nil {
		return nil, fmt.Errorf("write master key file %s: %w", tmp.Name(), err)
	}

	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		return readMasterKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("link master key file %s: %w", path, err)
	}

	syncDir(dir)
	slog.Info("created master key file (back it up, because sealed secrets cannot be opened without it)", "path", path)
	return key, nil
}

func writeKeyFile(file *os.File, key []byte) error {
	if err := file.Chmod(0o600); err != nil {
		file.Close()
		return err
	}
	if _, err := file.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// syncDir flushes the directory entry of a new file. Some platforms cannot
// sync a directory, and the file itself is already on disk, so errors are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
