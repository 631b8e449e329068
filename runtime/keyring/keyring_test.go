package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

var testStart = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newMasterKey(t *testing.T, fill byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{fill}, keyring.MasterKeySize)
}

func newKeyring(t *testing.T, db *storage.DB, masterKey []byte, clk clock.Clock) *keyring.Keyring {
	t.Helper()
	return keyring.New(db, masterKey, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func mustEnsure(t *testing.T, k *keyring.Keyring) {
	t.Helper()
	if err := k.Ensure(context.Background()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func countKeys(t *testing.T, db *storage.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM signing_keys`).Scan(&n); err != nil {
		t.Fatalf("count signing keys: %v", err)
	}
	return n
}

// jwksKeyIDs returns the kids of a JWKS document in order.
func jwksKeyIDs(t *testing.T, document []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KeyID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(document, &set); err != nil {
		t.Fatalf("decode JWKS %s: %v", document, err)
	}
	kids := []string{}
	for _, key := range set.Keys {
		kids = append(kids, key.KeyID)
	}
	return kids
}

func TestEnsureCreatesOneKey(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		k := newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart))

		mustEnsure(t, k)
		kid := k.SigningKeyID()
		if kid == "" {
			t.Fatal("SigningKeyID is empty after Ensure")
		}
		if n := countKeys(t, db); n != 1 {
			t.Fatalf("signing_keys has %d rows after Ensure, expected 1", n)
		}

		mustEnsure(t, k)
		if n := countKeys(t, db); n != 1 {
			t.Errorf("signing_keys has %d rows after a second Ensure, expected 1", n)
		}
		if got := k.SigningKeyID(); got != kid {
			t.Errorf("SigningKeyID = %q after a second Ensure, expected %q", got, kid)
		}
	})
}

func TestEnsureLoadsExistingKey(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		masterKey := newMasterKey(t, 1)
		first := newKeyring(t, db, masterKey, clock.NewFake(testStart))
		mustEnsure(t, first)

		second := newKeyring(t, db, masterKey, clock.NewFake(testStart))
		mustEnsure(t, second)

		if n := countKeys(t, db); n != 1 {
			t.Errorf("signing_keys has %d rows, expected 1", n)
		}
		if second.SigningKeyID() != first.SigningKeyID() {
			t.Errorf("second keyring signs with %q, expected %q", second.SigningKeyID(), first.SigningKeyID())
		}
	})
}

func TestEnsureConcurrent(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		const processes = 4
		masterKey := newMasterKey(t, 1)
		keyrings := make([]*keyring.Keyring, processes)
		for i := range keyrings {
			keyrings[i] = newKeyring(t, db, masterKey, clock.NewFake(testStart))
		}

		var wg sync.WaitGroup
		errs := make([]error, processes)
		for i, k := range keyrings {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = k.Ensure(context.Background())
			}()
		}
		wg.Wait()

		for i, err := range errs {
			if err != nil {
				t.Errorf("Ensure %d: %v", i, err)
			}
		}
		if n := countKeys(t, db); n != 1 {
			t.Errorf("signing_keys has %d rows, expected 1", n)
		}
		for i, k := range keyrings {
			if k.SigningKeyID() != keyrings[0].SigningKeyID() {
				t.Errorf("keyring %d signs with %q, keyring 0 with %q", i, k.SigningKeyID(), keyrings[0].SigningKeyID())
			}
		}
	})
}

func TestReloadSeesOtherRotation(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		masterKey := newMasterKey(t, 1)
		clk := clock.NewFake(testStart)
		rotating := newKeyring(t, db, masterKey, clk)
		reloading := newKeyring(t, db, masterKey, clk)
		mustEnsure(t, rotating)
		mustEnsure(t, reloading)

		newKID := mustRotate(t, rotating, 0, time.Minute)
		if _, ok := reloading.VerificationKey(newKID); ok {
			t.Fatal("other keyring knows the new key before Reload")
		}

		if err := reloading.Reload(context.Background()); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got := reloading.SigningKeyID(); got != newKID {
			t.Errorf("SigningKeyID = %q after Reload, expected %q", got, newKID)
		}
		if _, ok := reloading.VerificationKey(newKID); !ok {
			t.Error("new key does not verify after Reload")
		}
	})
}

func TestEnsureWrongMasterKey(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		mustEnsure(t, newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart)))

		err := newKeyring(t, db, newMasterKey(t, 2), clock.NewFake(testStart)).Ensure(context.Background())
		if !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Ensure with another master key returned %v, expected ErrOpen", err)
		}
	})
}

func TestReloadTamperedKey(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		masterKey := newMasterKey(t, 1)
		k := newKeyring(t, db, masterKey, clock.NewFake(testStart))
		mustEnsure(t, k)

		var sealed []byte
		err := db.QueryRowContext(context.Background(),
			`SELECT private_key_sealed FROM signing_keys WHERE kid = $1`, k.SigningKeyID()).Scan(&sealed)
		if err != nil {
			t.Fatalf("select sealed key: %v", err)
		}
		sealed[len(sealed)/2] ^= 0x01
		_, err = db.ExecContext(context.Background(),
			`UPDATE signing_keys SET private_key_sealed = $1 WHERE kid = $2`, sealed, k.SigningKeyID())
		if err != nil {
			t.Fatalf("update sealed key: %v", err)
		}

		err = newKeyring(t, db, masterKey, clock.NewFake(testStart)).Reload(context.Background())
		if !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Reload of a tampered key returned %v, expected ErrOpen", err)
		}
	})
}

func TestReloadSwappedSealedKey(t *testing.T) {
	// A key that has not activated yet is opened at load time too.
	for _, leadTime := range []time.Duration{0, 10 * time.Minute} {
		t.Run(leadTime.String(), func(t *testing.T) {
			db := storagetest.SQLite(t)
			masterKey := newMasterKey(t, 1)
			k := newKeyring(t, db, masterKey, clock.NewFake(testStart))
			mustEnsure(t, k)
			oldKID := k.SigningKeyID()
			newKID := mustRotate(t, k, leadTime, time.Minute)

			// Give the new key's row the sealed private key of the old one.
			_, err := db.ExecContext(context.Background(), `
				UPDATE signing_keys
				SET private_key_sealed = (SELECT private_key_sealed FROM signing_keys WHERE kid = $1)
				WHERE kid = $2`, oldKID, newKID)
			if err != nil {
				t.Fatalf("swap sealed key: %v", err)
			}

			err = newKeyring(t, db, masterKey, clock.NewFake(testStart)).Reload(context.Background())
			if !errors.Is(err, keyring.ErrOpen) {
				t.Errorf("Reload of a swapped sealed key returned %v, expected ErrOpen", err)
			}
		})
	}
}

func TestJWKSShape(t *testing.T) {
	db := storagetest.SQLite(t)
	k := newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart))

	if got := string(k.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS before Ensure = %s, expected an empty set", got)
	}
	mustEnsure(t, k)

	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, expected 1", len(set.Keys))
	}
	key := set.Keys[0]
	for field, expected := range map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.SigningKeyID(), "e": "AQAB"} {
		if key[field] != expected {
			t.Errorf("JWKS key %s = %q, expected %q", field, key[field], expected)
		}
	}
	if len(key) != 6 {
		t.Errorf("JWKS key has %d fields, expected 6: %v", len(key), key)
	}

	modulus, err := base64.RawURLEncoding.DecodeString(key["n"])
	if err != nil {
		t.Fatalf("decode n: %v", err)
	}
	public, _ := k.VerificationKey(k.SigningKeyID())
	if !bytes.Equal(modulus, public.N.Bytes()) {
		t.Error("JWKS n differs from the verification key's modulus")
	}
	if len(modulus) != 256 {
		t.Errorf("modulus is %d bytes, expected 256 for RSA-2048", len(modulus))
	}
}

// TestSignVerifiesWithJWKS checks that a third-party client that only reads
// the JWKS can verify a signed token.
func TestSignVerifiesWithJWKS(t *testing.T) {
	db := storagetest.SQLite(t)
	k := newKeyring(t, db, newMasterKey(t, 1), clock.NewFake(testStart))
	mustEnsure(t, k)

	signed, err := k.Sign(map[string]any{
		"iss": "https://nexus.test", "sub": "user-1", "sid": "session-1",
		"exp": time.Now().Add(time.Hour), "iat": time.Now(),
	})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}

	message, err := jws.Parse([]byte(signed))
	if err != nil {
		t.Fatalf("parse signed token: %v", err)
	}
	headers := message.Signatures()[0].ProtectedHeaders()
	if headers.KeyID() != k.SigningKeyID() {
		t.Errorf("kid header = %q, expected %q", headers.KeyID(), k.SigningKeyID())
	}
	if headers.Type() != "JWT" {
		t.Errorf("typ header = %q, expected JWT", headers.Type())
	}
	if headers.Algorithm().String() != "RS256" {
		t.Errorf("alg header = %q, expected RS256", headers.Algorithm())
	}

	set, err := jwk.Parse(k.JWKS())
	if err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	token, err := jwt.Parse([]byte(signed), jwt.WithKeySet(set))
	if err != nil {
		t.Fatalf("verify with JWKS: %v", err)
	}
	if sid, _ := token.Get("sid"); sid != "session-1" {
		t.Errorf("sid = %v, expected session-1", sid)
	}
}

func TestSignWithoutKey(t *testing.T) {
	k := newKeyring(t, storagetest.SQLite(t), newMasterKey(t, 1), clock.NewFake(testStart))

	if _, err := k.Sign(map[string]any{"sub": "user-1"}); !errors.Is(err, keyring.ErrNoSigningKey) {
		t.Errorf("Sign before Ensure returned %v, expected ErrNoSigningKey", err)
	}
}

func TestSignInvalidClaim(t *testing.T) {
	k := newKeyring(t, storagetest.SQLite(t), newMasterKey(t, 1), clock.NewFake(testStart))
	mustEnsure(t, k)

	if _, err := k.Sign(map[string]any{"exp": "tomorrow"}); err == nil {
		t.Error("Sign with a string exp returned no error")
	}
}
