package bearer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// TestVerifyKeyringTokens checks the verifier against tokens that the
// keyring signs, across a rotation.
func TestVerifyKeyringTokens(t *testing.T) {
	const accessTTL = 15 * time.Minute
	const leeway = 30 * time.Second
	ctx := context.Background()
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	keys := keyring.New(storagetest.SQLite(t), make([]byte, keyring.MasterKeySize), clk,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := keys.Ensure(ctx); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	verifier := bearer.New(bearer.Options{
		Keys: keys, Issuer: "https://nexus.test", Audience: "nexus-api",
		Leeway: leeway, Clock: clk, CacheEntries: 100,
	})
	sign := func() string {
		t.Helper()
		token, err := keys.Sign(map[string]any{
			"iss": "https://nexus.test", "aud": "nexus-api", "sub": "user-1", "sid": "session-1",
			"iat": clk.Now(), "exp": clk.Now().Add(accessTTL),
		})
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		return token
	}

	oldToken := sign()
	claims, err := verifier.Verify(oldToken)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.KeyID != keys.SigningKeyID() {
		t.Errorf("Claims.KeyID = %q, expected %q", claims.KeyID, keys.SigningKeyID())
	}
	oldKID := claims.KeyID

	if _, err := keys.Rotate(ctx, 0, accessTTL+leeway); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	newToken := sign()
	if _, err := verifier.Verify(newToken); err != nil {
		t.Errorf("Verify token of the new key: %v", err)
	}
	if _, err := verifier.Verify(oldToken); err != nil {
		t.Errorf("Verify token of the retired key during the overlap: %v", err)
	}

	// The old key expires when its last token does, so move past both and
	// check that the key is what rejects it.
	clk.Advance(accessTTL + leeway)
	_, err = verifier.Verify(oldToken)
	var unknown *bearer.UnknownKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("Verify token of the expired key returned %v, expected *UnknownKeyError", err)
	}
	if unknown.KeyID != oldKID {
		t.Errorf("UnknownKeyError.KeyID = %q, expected %q", unknown.KeyID, oldKID)
	}
}
