package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/runtime/keyring"
)

// refreshTokenBytes is the entropy of an opaque refresh token: 256 bits.
const refreshTokenBytes = 32

// tokenPair is the body of a successful login or refresh.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int64  `json:"expires_in"`
	SessionID string `json:"session_id"`
}

// randomToken returns a URL-safe random token of n bytes and the hex
// SHA-256 under which the store keeps it.
func randomToken(n int) (token, hash string, err error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
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

// signAccessToken issues an RS256 access token for the session, signed by
// the keyring's current key, whose kid the token's header carries.
func (m *Module) signAccessToken(userID, sessionID string, now time.Time) (string, error) {
	jti, err := newID("")
	if err != nil {
		return "", err
	}
	cfg := m.host.Config.Tokens
	return m.host.Keys.Sign(map[string]any{
		"sub": userID,
		"sid": sessionID,
		"jti": jti,
		"iss": cfg.Issuer,
		"aud": cfg.Audience,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(cfg.AccessTTL).Unix(),
	})
}

// newPair issues an access token and a new refresh token for the session.
func (m *Module) newPair(userID, sessionID string, now time.Time) (tokenPair, string, error) {
	access, err := m.signAccessToken(userID, sessionID, now)
	if err != nil {
		return tokenPair{}, "", fmt.Errorf("sign access token: %w", err)
	}
	refresh, refreshHash, err := randomToken(refreshTokenBytes)
	if err != nil {
		return tokenPair{}, "", err
	}
	pair := tokenPair{
		AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int64(m.host.Config.Tokens.AccessTTL / time.Second), SessionID: sessionID,
	}
	return pair, refreshHash, nil
}

// Errors of a refresh. The handler returns 401 for both.
var (
	errRefreshInvalid = errors.New("refresh token is invalid, expired or its session ended")
	errRefreshReused  = errors.New("refresh token was already used; the session has been ended")
)

// refresh rotates a refresh token. The first use returns a new pair and
// keeps it, sealed by the master key, on the old token's row. The same old
// token again within the reuse window returns that same pair, so a lost
// response or parallel tabs do not sign the user out. Later, the reuse
// counts as theft and ends the session. Concurrent uses produce exactly one
// successor.
func (m *Module) refresh(ctx context.Context, token string) (tokenPair, error) {
	now := m.host.Clock.Now()
	hash := hashToken(token)

	record, err := m.store.refreshToken(ctx, hash)
	if errors.Is(err, errNotFound) {
		return tokenPair{}, errRefreshInvalid
	}
	if err != nil {
		return tokenPair{}, err
	}
	if record.SessionRevoked || !now.Before(record.SessionExpiresAt) || !now.Before(record.ExpiresAt) {
		return tokenPair{}, errRefreshInvalid
	}

	if record.UsedAt == nil {
		pair, won, err := m.rotate(ctx, hash, record, now)
		if err != nil || won {
			return pair, err
		}
		// Another request used the token first: read its successor.
		if record, err = m.store.refreshToken(ctx, hash); err != nil {
			return tokenPair{}, err
		}
	}
	return m.reuse(ctx, hash, record, now)
}

func (m *Module) rotate(ctx context.Context, hash string, record refreshRecord, now time.Time) (tokenPair, bool, error) {
	pair, successorHash, err := m.newPair(record.UserID, record.SessionID, now)
	if err != nil {
		return tokenPair{}, false, err
	}
	plain, err := json.Marshal(pair)
	if err != nil {
		return tokenPair{}, false, fmt.Errorf("encode successor pair: %w", err)
	}
	sealed, err := keyring.Seal(m.masterKey, plain, []byte(hash))
	if err != nil {
		return tokenPair{}, false, fmt.Errorf("seal successor pair: %w", err)
	}

	expiresAt := record.SessionExpiresAt
	clearBefore := now.Add(-m.opts.RefreshReuseWindow)
	won, err := m.store.rotateRefreshToken(ctx, hash, successorHash, record.SessionID, sealed, now, expiresAt, clearBefore)
	if err != nil {
		return tokenPair{}, false, err
	}
	return pair, won, nil
}

// reuse handles a token that was already used: the same successor inside
// the reuse window, else the end of the session.
func (m *Module) reuse(ctx context.Context, hash string, record refreshRecord, now time.Time) (tokenPair, error) {
	inWindow := record.UsedAt != nil && now.Sub(*record.UsedAt) <= m.opts.RefreshReuseWindow
	if inWindow && record.SuccessorSealed != nil {
		plain, err := keyring.Open(m.masterKey, record.SuccessorSealed, []byte(hash))
		if err != nil {
			return tokenPair{}, fmt.Errorf("open successor pair of session %s: %w", record.SessionID, err)
		}
		var pair tokenPair
		if err := json.Unmarshal(plain, &pair); err != nil {
			return tokenPair{}, fmt.Errorf("decode successor pair of session %s: %w", record.SessionID, err)
		}
		return pair, nil
	}

	m.host.Logger.Warn("refresh token reused after its window; ending the session",
		"user_id", record.UserID, "session_id", record.SessionID)
	if err := m.endSessions(ctx, record.UserID, func(now time.Time) ([]string, error) {
		ended, err := m.store.revokeSession(ctx, record.UserID, record.SessionID, now)
		if !ended {
			return nil, err
		}
		return []string{record.SessionID}, err
	}); err != nil {
		return tokenPair{}, err
	}
	return tokenPair{}, errRefreshReused
}
