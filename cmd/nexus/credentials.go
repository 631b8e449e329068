package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nexus-suite/nexus/client"
)

// defaultServer is the address of `nexus serve` on its embedded defaults.
const defaultServer = "http://127.0.0.1:8080"

// credentials are the server address and tokens that `nexus login` stores
// for later commands.
type credentials struct {
	Server       string    `json:"server"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// credentialsPath is credentials.json in the user's config directory,
// such as ~/.config/nexus on Linux. NEXUS_CREDENTIALS replaces it.
func credentialsPath() (string, error) {
	if path := os.Getenv("NEXUS_CREDENTIALS"); path != "" {
		return path, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for credentials: %w", err)
	}
	return filepath.Join(dir, "nexus", "credentials.json"), nil
}

// loadCredentials returns the stored credentials, or empty ones with
// found false when none are stored.
func loadCredentials() (credentials, bool, error) {
	path, err := credentialsPath()
	if err != nil {
		return credentials{}, false, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, false, nil
	}
	if err != nil {
		return credentials{}, false, fmt.Errorf("read credentials: %w", err)
	}
	var stored credentials
	if err := json.Unmarshal(data, &stored); err != nil {
		return credentials{}, false, fmt.Errorf("read credentials %s: %w (run nexus login again)", path, err)
	}
	return stored, true, nil
}

// saveCredentials writes the credentials with mode 0600 in a directory of
// mode 0700, through a temporary file and a rename, so a crash never
// leaves half a file.
func saveCredentials(stored credentials) error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	data, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return err
	}

	temporary, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return fmt.Errorf("write credentials to %s: %w", path, err)
	}
	defer os.Remove(temporary.Name())
	if err := temporary.Chmod(0o600); err != nil {
		temporary.Close()
		return fmt.Errorf("write credentials to %s: %w", path, err)
	}
	if _, err := temporary.Write(data); err != nil {
		temporary.Close()
		return fmt.Errorf("write credentials to %s: %w", path, err)
	}
	if err := temporary.Close(); err != nil {
		return fmt.Errorf("write credentials to %s: %w", path, err)
	}

	if err := os.Rename(temporary.Name(), path); err != nil {
		return fmt.Errorf("write credentials to %s: %w", path, err)
	}
	return nil
}

func removeCredentials() error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove credentials: %w", err)
	}
	return nil
}

func (c credentials) tokens() client.Tokens {
	return client.Tokens{AccessToken: c.AccessToken, RefreshToken: c.RefreshToken, ExpiresAt: c.ExpiresAt}
}
