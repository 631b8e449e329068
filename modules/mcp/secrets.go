package mcp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/nexus-suite/nexus/runtime/keyring"
)

// sealSecrets encrypts a server's secrets under the master key, bound to
// the server id so that a sealed value cannot be moved to another server.
// It returns nil for no secrets.
func sealSecrets(masterKey []byte, serverID string, secrets map[string]string) ([]byte, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	plaintext, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encode secrets: %w", err)
	}
	sealed, err := keyring.Seal(masterKey, plaintext, secretsAD(serverID))
	if err != nil {
		return nil, fmt.Errorf("seal secrets of server %s: %w", serverID, err)
	}
	return sealed, nil
}

// openSecrets decrypts what sealSecrets returned.
func openSecrets(masterKey []byte, serverID string, sealed []byte) (map[string]string, error) {
	if len(sealed) == 0 {
		return map[string]string{}, nil
	}
	plaintext, err := keyring.Open(masterKey, sealed, secretsAD(serverID))
	if err != nil {
		return nil, fmt.Errorf("open secrets of server %s: %w", serverID, err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plaintext, &secrets); err != nil {
		return nil, fmt.Errorf("decode secrets of server %s: %w", serverID, err)
	}
	return secrets, nil
}

func secretsAD(serverID string) []byte { return []byte("mcp_servers.secrets_sealed:" + serverID) }

// secretEnv returns secrets as NAME=value pairs for the plugin's environment.
func secretEnv(secrets map[string]string) []string {
	env := make([]string, 0, len(secrets))
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		env = append(env, name+"="+secrets[name])
	}
	return env
}

// Per-server tokens are tokenPrefix followed by 32 random bytes in
// unpadded base64url. The prefix distinguishes them from access tokens at a
// glance.
const (
	tokenPrefix = "nxm_"
	tokenBytes  = 32
)

// newToken returns a new per-server token and the hex SHA-256 that the
// store keeps instead of it.
func newToken() (token, hash string, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// newID returns an id with the given prefix and 128 random bits.
func newID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}
