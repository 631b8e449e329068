package keyring_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// signedKeyID signs a token with k and returns the kid header it carries.
func signedKeyID(t *testing.T, k *keyring.Keyring) string {
	t.Helper()
	signed, err := k.Sign(map[string]any{"sub": "user-1"})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	message, err := jws.Parse([]byte(signed))
	if err != nil {
		t.Fatalf("parse signed token: %v", err)
	}
	return message.Signatures()[0].ProtectedHeaders().KeyID()
}

// keyTimes returns the activates_at, retires_at and expires_at columns of
// a key in unix milliseconds, with -1 for NULL.
func keyTimes(t *testing.T, db *storage.DB, kid string) (activatesAt, retiresAt, expiresAt int64) {
	t.Helper()
	var activates, retires, expires sql.NullInt64
	err := db.QueryRowContext(context.Background(),
		`SELECT activates_at, retires_at, expires_at FROM signing_keys WHERE kid = $1`, kid).Scan(&activates, &retires, &expires)
	if err != nil {
		t.Fatalf("select key %s: %v", kid, err)
	}
	orNull := func(v sql.NullInt64) int64 {
		if !v.Valid {
			return -1
		}
		return v.Int64
	}
	return orNull(activates), orNull(retires), orNull(expires)
}

func mustRotate(t *testing.T, k *keyring.Keyring, leadTime, overlap time.Duration) string {
	t.Helper()
	kid, err := k.Rotate(context.Background(), leadTime, overlap)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return kid
}

func mustReload(t *testing.T, k *keyring.Keyring) {
	t.Helper()
	if err := k.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

func TestRotateLeadTime(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		const leadTime = 10 * time.Minute
		const overlap = 15 * time.Minute
		masterKey := newMasterKey(t, 1)
		clk := clock.NewFake(testStart)
		k := newKeyring(t, db, masterKey, clk)
		mustEnsure(t, k)
		oldKID := k.SigningKeyID()
		// other is a second node that loaded the keys before the rotation.
		other := newKeyring(t, db, masterKey, clk)
		mustEnsure(t, other)

		clk.Advance(time.Hour)
		rotatedAt := clk.Now()
		newKID := mustRotate(t, k, leadTime, overlap)
		activatesAt := rotatedAt.Add(leadTime)

		if newKID == oldKID {
			t.Fatalf("Rotate returned the old kid %q", newKID)
		}
		if got := strings.Join(jwksKeyIDs(t, k.JWKS()), ","); got != newKID+","+oldKID {
			t.Errorf("JWKS kids = %s after Rotate, expected %s,%s", got, newKID, oldKID)
		}
		if got := k.SigningKeyID(); got != oldKID {
			t.Errorf("SigningKeyID = %q before the activation, expected the old %q", got, oldKID)
		}
		if got := signedKeyID(t, k); got != oldKID {
			t.Errorf("token kid = %q before the activation, expected the old %q", got, oldKID)
		}
		if _, ok := k.VerificationKey(newKID); !ok {
			t.Error("new key does not verify before its activation")
		}
		if got, ok := k.ActivatesAt(newKID); !ok || !got.Equal(activatesAt) {
			t.Errorf("ActivatesAt = %v, %v, expected %v, true", got, ok, activatesAt)
		}

		newActivates, newRetires, newExpires := keyTimes(t, db, newKID)
		if newActivates != activatesAt.UnixMilli() {
			t.Errorf("new key activates_at = %d, expected %d", newActivates, activatesAt.UnixMilli())
		}
		if newRetires != -1 || newExpires != -1 {
			t.Errorf("new key retires_at, expires_at = %d, %d, expected NULL, NULL", newRetires, newExpires)
		}
		oldActivates, oldRetires, oldExpires := keyTimes(t, db, oldKID)
		if oldActivates != -1 {
			t.Errorf("Ensure's key activates_at = %d, expected NULL", oldActivates)
		}
		if oldRetires != activatesAt.UnixMilli() {
			t.Errorf("old key retires_at = %d, expected %d", oldRetires, activatesAt.UnixMilli())
		}
		if oldExpires != activatesAt.Add(overlap).UnixMilli() {
			t.Errorf("old key expires_at = %d, expected %d", oldExpires, activatesAt.Add(overlap).UnixMilli())
		}

		mustReload(t, other)
		if got := strings.Join(jwksKeyIDs(t, other.JWKS()), ","); got != newKID+","+oldKID {
			t.Errorf("other node's JWKS kids = %s after Reload, expected %s,%s", got, newKID, oldKID)
		}
		if got := other.SigningKeyID(); got != oldKID {
			t.Errorf("other node's SigningKeyID = %q before the activation, expected %q", got, oldKID)
		}

		clk.Advance(leadTime - time.Millisecond)
		if got := signedKeyID(t, k); got != oldKID {
			t.Errorf("token kid = %q 1ms before the activation, expected the old %q", got, oldKID)
		}

		clk.Advance(time.Millisecond)
		if got := signedKeyID(t, k); got != newKID {
			t.Errorf("token kid = %q at the activation, expected the new %q", got, newKID)
		}
		if got := k.SigningKeyID(); got != newKID {
			t.Errorf("SigningKeyID = %q at the activation, expected %q", got, newKID)
		}
		if got := signedKeyID(t, other); got != newKID {
			t.Errorf("other node's token kid = %q at the activation, expected %q", got, newKID)
		}
		if _, ok := k.VerificationKey(oldKID); !ok {
			t.Error("old key does not verify after the activation")
		}
		if got := strings.Join(jwksKeyIDs(t, k.JWKS()), ","); got != newKID+","+oldKID {
			t.Errorf("JWKS kids = %s at the activation, expected %s,%s", got, newKID, oldKID)
		}

		clk.Advance(overlap - time.Millisecond)
		if _, ok := k.VerificationKey(oldKID); !ok {
			t.Error("old key does not verify 1ms before expires_at")
		}

		clk.Advance(time.Millisecond)
		if _, ok := k.VerificationKey(oldKID); ok {
			t.Error("old key still verifies at expires_at")
		}
		if got := strings.Join(jwksKeyIDs(t, k.JWKS()), ","); got != newKID {
			t.Errorf("JWKS kids = %s at expires_at, expected %s", got, newKID)
		}
		if _, ok := other.VerificationKey(oldKID); ok {
			t.Error("old key still verifies on the other node at expires_at")
		}
		if got := signedKeyID(t, k); got != newKID {
			t.Errorf("token kid = %q at expires_at, expected the new %q", got, newKID)
		}

		mustReload(t, k)
		mustReload(t, other)
		for name, node := range map[string]*keyring.Keyring{"rotating": k, "other": other} {
			if got := strings.Join(jwksKeyIDs(t, node.JWKS()), ","); got != newKID {
				t.Errorf("%s node's JWKS kids = %s after Reload, expected %s", name, got, newKID)
			}
			if got := node.SigningKeyID(); got != newKID {
				t.Errorf("%s node's SigningKeyID = %q after Reload, expected %q", name, got, newKID)
			}
		}
	})
}

func TestRotateZeroLeadTime(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		const overlap = 15 * time.Minute
		clk := clock.NewFake(testStart)
		k := newKeyring(t, db, newMasterKey(t, 1), clk)
		mustEnsure(t, k)
		oldKID := k.SigningKeyID()

		clk.Advance(time.Hour)
		newKID := mustRotate(t, k, 0, overlap)

		if got := signedKeyID(t, k); got != newKID {
			t.Errorf("token kid = %q after Rotate, expected the new %q", got, newKID)
		}
		if got, ok := k.ActivatesAt(newKID); !ok || !got.Equal(clk.Now()) {
			t.Errorf("ActivatesAt = %v, %v, expected %v, true", got, ok, clk.Now())
		}
		if _, ok := k.VerificationKey(oldKID); !ok {
			t.Error("old key does not verify during the overlap")
		}
		_, oldRetires, oldExpires := keyTimes(t, db, oldKID)
		if oldRetires != clk.Now().UnixMilli() {
			t.Errorf("old key retires_at = %d, expected %d", oldRetires, clk.Now().UnixMilli())
		}
		if oldExpires != clk.Now().Add(overlap).UnixMilli() {
			t.Errorf("old key expires_at = %d, expected %d", oldExpires, clk.Now().Add(overlap).UnixMilli())
		}

		clk.Advance(overlap)
		if _, ok := k.VerificationKey(oldKID); ok {
			t.Error("old key still verifies at expires_at")
		}
	})
}

// TestRotateBeforeActivation rotates again while a key has not activated
// yet: the waiting key never signs when its successor activates first.
func TestRotateBeforeActivation(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		const overlap = 15 * time.Minute
		clk := clock.NewFake(testStart)
		k := newKeyring(t, db, newMasterKey(t, 1), clk)
		mustEnsure(t, k)
		firstKID := k.SigningKeyID()

		waitingKID := mustRotate(t, k, 10*time.Minute, overlap)
		clk.Advance(time.Minute)
		latestKID := mustRotate(t, k, 0, overlap)
		secondRotation := clk.Now()

		if got := signedKeyID(t, k); got != latestKID {
			t.Errorf("token kid = %q after the second Rotate, expected %q", got, latestKID)
		}
		_, waitingRetires, waitingExpires := keyTimes(t, db, waitingKID)
		if waitingRetires != secondRotation.UnixMilli() {
			t.Errorf("waiting key retires_at = %d, expected %d", waitingRetires, secondRotation.UnixMilli())
		}
		if waitingExpires != secondRotation.Add(overlap).UnixMilli() {
			t.Errorf("waiting key expires_at = %d, expected %d", waitingExpires, secondRotation.Add(overlap).UnixMilli())
		}
		_, firstRetires, _ := keyTimes(t, db, firstKID)
		if firstRetires != secondRotation.UnixMilli() {
			t.Errorf("first key retires_at = %d, expected %d", firstRetires, secondRotation.UnixMilli())
		}

		clk.Advance(9 * time.Minute)
		if got := signedKeyID(t, k); got != latestKID {
			t.Errorf("token kid = %q at the waiting key's activation, expected %q", got, latestKID)
		}
		if _, ok := k.ActivatesAt(waitingKID); ok {
			t.Error("ActivatesAt reports the superseded key, which never signs")
		}

		clk.Advance(overlap)
		if got := strings.Join(jwksKeyIDs(t, k.JWKS()), ","); got != latestKID {
			t.Errorf("JWKS kids = %s after the overlap, expected %s", got, latestKID)
		}
	})
}

// TestRotateKeepsEarlierRetirement checks that a second rotation with a
// longer lead time never moves a key's retirement or expiry later.
func TestRotateKeepsEarlierRetirement(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		const overlap = 15 * time.Minute
		clk := clock.NewFake(testStart)
		k := newKeyring(t, db, newMasterKey(t, 1), clk)
		mustEnsure(t, k)
		firstKID := k.SigningKeyID()

		secondKID := mustRotate(t, k, 10*time.Minute, overlap)
		clk.Advance(time.Minute)
		thirdKID := mustRotate(t, k, 20*time.Minute, overlap)

		_, firstRetires, firstExpires := keyTimes(t, db, firstKID)
		if want := testStart.Add(10 * time.Minute).UnixMilli(); firstRetires != want {
			t.Errorf("first key retires_at = %d, expected %d", firstRetires, want)
		}
		if want := testStart.Add(10*time.Minute + overlap).UnixMilli(); firstExpires != want {
			t.Errorf("first key expires_at = %d, expected %d", firstExpires, want)
		}
		_, secondRetires, _ := keyTimes(t, db, secondKID)
		if want := testStart.Add(21 * time.Minute).UnixMilli(); secondRetires != want {
			t.Errorf("second key retires_at = %d, expected %d", secondRetires, want)
		}

		steps := []struct {
			at  time.Duration
			kid string
		}{
			{9*time.Minute + 59*time.Second, firstKID},
			{10 * time.Minute, secondKID},
			{20*time.Minute + 59*time.Second, secondKID},
			{21 * time.Minute, thirdKID},
		}
		for _, step := range steps {
			clk.Set(testStart.Add(step.at))
			if got := signedKeyID(t, k); got != step.kid {
				t.Errorf("token kid at +%v = %q, expected %q", step.at, got, step.kid)
			}
		}
	})
}

func TestRotateWithoutSigningKey(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		k := newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart))

		kid := mustRotate(t, k, 10*time.Minute, time.Minute)

		if got := signedKeyID(t, k); got != kid {
			t.Errorf("token kid = %q, expected %q at once when no key signed before", got, kid)
		}
		mustEnsure(t, k)
		if n := countKeys(t, db); n != 1 {
			t.Errorf("signing_keys has %d rows after Ensure, expected 1", n)
		}
	})
}

func TestRotateNegativeDuration(t *testing.T) {
	tests := []struct {
		name              string
		leadTime, overlap time.Duration
	}{
		{"lead time", -time.Second, time.Minute},
		{"overlap", time.Minute, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := storagetest.SQLite(t)
			k := newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart))

			if _, err := k.Rotate(context.Background(), tt.leadTime, tt.overlap); err == nil {
				t.Error("Rotate returned no error")
			}
			if n := countKeys(t, db); n != 0 {
				t.Errorf("signing_keys has %d rows, expected 0", n)
			}
		})
	}
}
