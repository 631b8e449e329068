package bearer

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
)

const (
	testIssuer   = "https://nexus.test"
	testAudience = "nexus-api"
	testKID      = "key-1"
	testLeeway   = 30 * time.Second
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	testKeysOnce  sync.Once
	testKey       *rsa.PrivateKey
	testOtherKey  *rsa.PrivateKey
	testKeysError error
)

// rsaKeys returns two RSA-2048 keys shared by all tests, because generating
// one takes a noticeable fraction of a second.
func rsaKeys(tb testing.TB) (signing, other *rsa.PrivateKey) {
	tb.Helper()
	testKeysOnce.Do(func() {
		testKey, testKeysError = rsa.GenerateKey(rand.Reader, 2048)
		if testKeysError == nil {
			testOtherKey, testKeysError = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	if testKeysError != nil {
		tb.Fatalf("generate RSA keys: %v", testKeysError)
	}
	return testKey, testOtherKey
}

// keySource is a KeySource over a map that counts lookups.
type keySource struct {
	mu      sync.RWMutex
	keys    map[string]*rsa.PublicKey
	lookups atomic.Int64
}

func (s *keySource) VerificationKey(kid string) (*rsa.PublicKey, bool) {
	s.lookups.Add(1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	key, ok := s.keys[kid]
	return key, ok
}

func (s *keySource) remove(kid string) {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
}

// fixture is a Verifier on a fake clock with one known key, testKID.
type fixture struct {
	verifier       *Verifier
	keys           *keySource
	clock          *clock.Fake
	signatureCalls atomic.Int64
}

func newFixture(tb testing.TB, cacheEntries int) *fixture {
	tb.Helper()
	signing, _ := rsaKeys(tb)

	f := &fixture{
		keys:  &keySource{keys: map[string]*rsa.PublicKey{testKID: &signing.PublicKey}},
		clock: clock.NewFake(testNow),
	}
	f.verifier = New(Options{
		Keys:         f.keys,
		Issuer:       testIssuer,
		Audience:     testAudience,
		Leeway:       testLeeway,
		Clock:        f.clock,
		CacheEntries: cacheEntries,
	})
	f.verifier.verifySignature = func(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error {
		f.signatureCalls.Add(1)
		return rsa.VerifyPKCS1v15(pub, hash, hashed, sig)
	}
	return f
}

// validClaims returns the claims of a token that verifies at testNow.
func validClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "user-1",
		"sid": "session-1",
		"jti": "token-1",
		"iat": testNow.Unix(),
		"nbf": testNow.Unix(),
		"exp": testNow.Add(15 * time.Minute).Unix(),
	}
}

func encodeJSON(tb testing.TB, value any) string {
	tb.Helper()
	raw, err := json.Marshal(value)
	if err != nil {
		tb.Fatalf("encode %v: %v", value, err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// signToken returns a compact JWS of claims with header, signed with RS256 by key.
func signToken(tb testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	tb.Helper()
	signingInput := encodeJSON(tb, header) + "." + encodeJSON(tb, claims)
	digest := sha256.Sum256([]byte(signingInput))
	signature, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		tb.Fatalf("sign token: %v", err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(signature)
}

func rs256Header() map[string]any {
	return map[string]any{"alg": "RS256", "typ": "JWT", "kid": testKID}
}

func validToken(tb testing.TB) string {
	tb.Helper()
	signing, _ := rsaKeys(tb)
	return signToken(tb, signing, rs256Header(), validClaims())
}

func TestVerifyValid(t *testing.T) {
	f := newFixture(t, 0)

	claims, err := f.verifier.Verify(validToken(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	expected := Claims{
		Subject:   "user-1",
		SessionID: "session-1",
		ID:        "token-1",
		KeyID:     testKID,
		IssuedAt:  testNow,
		ExpiresAt: testNow.Add(15 * time.Minute),
	}
	if claims != expected {
		t.Errorf("Verify = %+v, expected %+v", claims, expected)
	}
}

func TestVerifyClaims(t *testing.T) {
	tests := []struct {
		name     string
		change   func(claims map[string]any)
		expected error
	}{
		{"Valid", func(map[string]any) {}, nil},
		{"ExpiredBeyondLeeway", func(c map[string]any) { c["exp"] = testNow.Add(-testLeeway).Unix() }, ErrExpired},
		{"ExpiredWithinLeeway", func(c map[string]any) { c["exp"] = testNow.Add(-testLeeway + time.Second).Unix() }, nil},
		{"MissingExp", func(c map[string]any) { delete(c, "exp") }, ErrClaims},
		{"StringExp", func(c map[string]any) { c["exp"] = "tomorrow" }, ErrClaims},
		{"NullExp", func(c map[string]any) { c["exp"] = nil }, ErrClaims},
		{"FractionalExp", func(c map[string]any) { c["exp"] = float64(testNow.Add(time.Minute).Unix()) + 0.5 }, nil},
		{"NotBeforeInFuture", func(c map[string]any) { c["nbf"] = testNow.Add(testLeeway + time.Second).Unix() }, ErrNotYetValid},
		{"NotBeforeWithinLeeway", func(c map[string]any) { c["nbf"] = testNow.Add(testLeeway).Unix() }, nil},
		{"IssuedInFuture", func(c map[string]any) { c["iat"] = testNow.Add(testLeeway + time.Second).Unix() }, ErrNotYetValid},
		{"NoNotBeforeOrIssuedAt", func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }, nil},
		{"WrongIssuer", func(c map[string]any) { c["iss"] = "https://evil.test" }, ErrIssuer},
		{"MissingIssuer", func(c map[string]any) { delete(c, "iss") }, ErrIssuer},
		{"WrongAudience", func(c map[string]any) { c["aud"] = "other-api" }, ErrAudience},
		{"MissingAudience", func(c map[string]any) { delete(c, "aud") }, ErrAudience},
		{"AudienceArray", func(c map[string]any) { c["aud"] = []string{"other-api", testAudience} }, nil},
		{"AudienceArrayWithout", func(c map[string]any) { c["aud"] = []string{"other-api"} }, ErrAudience},
		{"AudienceNumber", func(c map[string]any) { c["aud"] = 7 }, ErrClaims},
		{"MissingSubject", func(c map[string]any) { delete(c, "sub") }, ErrClaims},
		{"EmptySubject", func(c map[string]any) { c["sub"] = "" }, ErrClaims},
		{"MissingSessionID", func(c map[string]any) { delete(c, "sid") }, ErrClaims},
		{"NumericSessionID", func(c map[string]any) { c["sid"] = 42 }, ErrClaims},
		{"MissingID", func(c map[string]any) { delete(c, "jti") }, nil},
	}
	signing, _ := rsaKeys(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)
			claims := validClaims()
			tt.change(claims)

			_, err := f.verifier.Verify(signToken(t, signing, rs256Header(), claims))
			if tt.expected == nil && err != nil {
				t.Errorf("Verify returned %v, expected no error", err)
			}
			if tt.expected != nil && !errors.Is(err, tt.expected) {
				t.Errorf("Verify returned %v, expected %v", err, tt.expected)
			}
		})
	}
}

func TestVerifyWrongIssuerIsClaimsError(t *testing.T) {
	f := newFixture(t, 0)
	signing, _ := rsaKeys(t)
	claims := validClaims()
	claims["iss"] = "https://evil.test"

	_, err := f.verifier.Verify(signToken(t, signing, rs256Header(), claims))
	if !errors.Is(err, ErrClaims) {
		t.Errorf("Verify returned %v, expected it to wrap ErrClaims", err)
	}
}

func TestVerifyExpiresWithClock(t *testing.T) {
	f := newFixture(t, 0)
	token := validToken(t)
	if _, err := f.verifier.Verify(token); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	f.clock.Advance(15*time.Minute + testLeeway)
	if _, err := f.verifier.Verify(token); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify after exp+leeway returned %v, expected ErrExpired", err)
	}
}

func TestVerifyUnknownKey(t *testing.T) {
	f := newFixture(t, 0)
	signing, _ := rsaKeys(t)
	header := rs256Header()
	header["kid"] = "retired-key"

	_, err := f.verifier.Verify(signToken(t, signing, header, validClaims()))
	var unknown *UnknownKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("Verify returned %v, expected *UnknownKeyError", err)
	}
	if unknown.KeyID != "retired-key" {
		t.Errorf("UnknownKeyError.KeyID = %q, expected retired-key", unknown.KeyID)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify returned %v, expected it to wrap ErrUnknownKey", err)
	}
}

func TestVerifyAlgorithm(t *testing.T) {
	signing, _ := rsaKeys(t)
	publicDER, err := x509.MarshalPKIXPublicKey(&signing.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	claimsPart := encodeJSON(t, validClaims())

	// hmacToken signs like an HS256 issuer that uses the RSA public key
	// bytes as its HMAC secret, the classic alg confusion attack.
	hmacToken := func(alg string) string {
		input := encodeJSON(t, map[string]any{"alg": alg, "typ": "JWT", "kid": testKID}) + "." + claimsPart
		mac := hmac.New(sha256.New, publicDER)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	unsigned := func(alg string) string {
		return encodeJSON(t, map[string]any{"alg": alg, "kid": testKID}) + "." + claimsPart + "."
	}
	rsaToken := func(alg string) string {
		header := rs256Header()
		header["alg"] = alg
		return signToken(t, signing, header, validClaims())
	}

	tests := []struct {
		name  string
		token string
	}{
		{"None", unsigned("none")},
		{"NoneUppercase", unsigned("NONE")},
		{"Empty", unsigned("")},
		{"HS256WithPublicKey", hmacToken("HS256")},
		{"RS384", rsaToken("RS384")},
		{"PS256", rsaToken("PS256")},
		{"LowercaseRS256", rsaToken("rs256")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)

			_, err := f.verifier.Verify(tt.token)
			if !errors.Is(err, ErrAlgorithm) {
				t.Errorf("Verify returned %v, expected ErrAlgorithm", err)
			}
			if n := f.keys.lookups.Load(); n != 0 {
				t.Errorf("Verify looked up %d keys before rejecting the algorithm, expected 0", n)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	signing, other := rsaKeys(t)
	valid := validToken(t)
	parts := strings.Split(valid, ".")

	tamperedClaims := validClaims()
	tamperedClaims["sub"] = "admin"
	tamperedPayload := parts[0] + "." + encodeJSON(t, tamperedClaims) + "." + parts[2]

	signature, _ := base64.RawURLEncoding.DecodeString(parts[2])
	signature[0] ^= 0x01
	flippedSignature := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(signature)

	tests := []struct {
		name  string
		token string
	}{
		{"OtherKeyKnownKID", signToken(t, other, rs256Header(), validClaims())},
		{"TamperedPayload", tamperedPayload},
		{"FlippedSignatureBit", flippedSignature},
		{"EmptySignature", parts[0] + "." + parts[1] + "."},
		{"SignatureOfOtherPayload", parts[0] + "." + parts[1] + "." + strings.Split(signToken(t, signing, rs256Header(), tamperedClaims), ".")[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)

			_, err := f.verifier.Verify(tt.token)
			if !errors.Is(err, ErrSignature) {
				t.Errorf("Verify returned %v, expected ErrSignature", err)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	valid := validToken(t)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
	}{
		{"Empty", ""},
		{"OnePart", parts[0]},
		{"TwoParts", parts[0] + "." + parts[1]},
		{"FourParts", valid + ".extra"},
		{"HeaderNotBase64", "!!!." + parts[1] + "." + parts[2]},
		{"HeaderNotJSON", base64.RawURLEncoding.EncodeToString([]byte("RS256")) + "." + parts[1] + "." + parts[2]},
		{"HeaderPadded", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"MissingKID", encodeJSON(t, map[string]any{"alg": "RS256"}) + "." + parts[1] + "." + parts[2]},
		{"NumericKID", encodeJSON(t, map[string]any{"alg": "RS256", "kid": 1}) + "." + parts[1] + "." + parts[2]},
		{"CriticalHeader", encodeJSON(t, map[string]any{"alg": "RS256", "kid": testKID, "crit": []string{"exp"}}) + "." + parts[1] + "." + parts[2]},
		{"SignatureNotBase64", parts[0] + "." + parts[1] + ".***"},
		{"TooLong", parts[0] + "." + strings.Repeat("A", maxTokenBytes) + "." + parts[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 0)

			_, err := f.verifier.Verify(tt.token)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify returned %v, expected ErrMalformed", err)
			}
		})
	}
}

func TestVerifyPayloadNotJSON(t *testing.T) {
	f := newFixture(t, 0)
	signing, _ := rsaKeys(t)
	input := encodeJSON(t, rs256Header()) + "." + base64.RawURLEncoding.EncodeToString([]byte("not json"))
	digest := sha256.Sum256([]byte(input))
	signature, err := rsa.SignPKCS1v15(rand.Reader, signing, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}

	_, err = f.verifier.Verify(input + "." + base64.RawURLEncoding.EncodeToString(signature))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("Verify returned %v, expected ErrMalformed", err)
	}
}

func TestVerifyErrorOmitsToken(t *testing.T) {
	f := newFixture(t, 0)
	_, other := rsaKeys(t)
	token := signToken(t, other, rs256Header(), validClaims())

	_, err := f.verifier.Verify(token)
	if err == nil {
		t.Fatal("Verify accepted a token signed by another key")
	}
	for _, part := range strings.Split(token, ".") {
		if strings.Contains(err.Error(), part) {
			t.Errorf("error %q contains a part of the token", err)
		}
	}
}
