package keyring_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/keyring"
)

func TestLoadMasterKeyCreatesFile(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")

	key, err := keyring.LoadMasterKey(configs.Security{}, dataDir)
	if err != nil {
		t.Fatalf("LoadMasterKey: %v", err)
	}
	if len(key) != keyring.MasterKeySize {
		t.Errorf("key is %d bytes, expected %d", len(key), keyring.MasterKeySize)
	}

	path := filepath.Join(dataDir, "master.key")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat key file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, expected 0600", info.Mode().Perm())
	}
	dirInfo, err := os.Stat(dataDir)
	if err != nil {
		t.Fatalf("stat data dir: %v", err)
	}
	if dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %04o, expected 0700", dirInfo.Mode().Perm())
	}

	again, err := keyring.LoadMasterKey(configs.Security{}, dataDir)
	if err != nil {
		t.Fatalf("second LoadMasterKey: %v", err)
	}
	if !bytes.Equal(again, key) {
		t.Error("second LoadMasterKey returned another key")
	}

	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatalf("read data dir: %v", err)
	}
	if len(entries) != 1 {
		t.Errorf("data dir has %d entries, expected only master.key", len(entries))
	}
}

func TestLoadMasterKeyConfiguredFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "nexus.key")
	want := bytes.Repeat([]byte{7}, keyring.MasterKeySize)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(want)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	key, err := keyring.LoadMasterKey(configs.Security{MasterKeyFile: path}, "/nonexistent")
	if err != nil {
		t.Fatalf("LoadMasterKey: %v", err)
	}
	if !bytes.Equal(key, want) {
		t.Error("LoadMasterKey returned another key than the file's")
	}
}

func TestLoadMasterKeyRejectsReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	text := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, keyring.MasterKeySize))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := keyring.LoadMasterKey(configs.Security{MasterKeyFile: path}, "")
	if err == nil {
		t.Fatal("LoadMasterKey accepted a 0644 key file")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("error %q does not give the chmod that fixes it", err)
	}
}

func TestLoadMasterKeyInvalid(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"Short", base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"Long", base64.StdEncoding.EncodeToString(make([]byte, 64))},
		{"NotBase64", "not base64 at all!"},
		{"Empty", ""},
	}
	for _, tt := range tests {
		// An empty master_key selects the key file, so it is only a file case.
		if tt.text != "" {
			t.Run("Config"+tt.name, func(t *testing.T) {
				if _, err := keyring.LoadMasterKey(configs.Security{MasterKey: tt.text}, t.TempDir()); err == nil {
					t.Error("LoadMasterKey accepted the key")
				}
			})
		}
		t.Run("File"+tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := keyring.LoadMasterKey(configs.Security{MasterKeyFile: path}, ""); err == nil {
				t.Error("LoadMasterKey accepted the key file")
			}
		})
	}
}

func TestLoadMasterKeyFromConfig(t *testing.T) {
	want := bytes.Repeat([]byte{0xfb}, keyring.MasterKeySize)
	dataDir := t.TempDir()

	for name, encoding := range map[string]*base64.Encoding{
		"Std": base64.StdEncoding, "RawStd": base64.RawStdEncoding,
		"URL": base64.URLEncoding, "RawURL": base64.RawURLEncoding,
	} {
		t.Run(name, func(t *testing.T) {
			key, err := keyring.LoadMasterKey(configs.Security{MasterKey: encoding.EncodeToString(want)}, dataDir)
			if err != nil {
				t.Fatalf("LoadMasterKey: %v", err)
			}
			if !bytes.Equal(key, want) {
				t.Error("LoadMasterKey returned another key than the config's")
			}
		})
	}

	if _, err := os.Stat(filepath.Join(dataDir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("LoadMasterKey with a configured key touched the key file: %v", err)
	}
}

func TestLoadMasterKeyConcurrentCreate(t *testing.T) {
	const processes = 8
	dataDir := t.TempDir()
	keys := make([][]byte, processes)
	errs := make([]error, processes)

	var wg sync.WaitGroup
	for i := range processes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = keyring.LoadMasterKey(configs.Security{}, dataDir)
		}()
	}
	wg.Wait()

	for i := range processes {
		if errs[i] != nil {
			t.Errorf("LoadMasterKey %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("LoadMasterKey %d returned another key than LoadMasterKey 0", i)
		}
	}
}
