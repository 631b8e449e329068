package app_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// handToken builds a JWT from a header and claims, signed by sign.
func handToken(t *testing.T, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	encode := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(data)
	}
	signingInput := encode(header) + "." + encode(claims)
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(signingInput)))
}

func (s *testServer) claims(userID, sessionID string) map[string]any {
	now := s.clock.Now()
	return map[string]any{
		"sub": userID, "sid": sessionID, "jti": "j1", "iss": s.cfg.Tokens.Issuer, "aud": s.cfg.Tokens.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}
}

func TestBearerTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOption{engine: e})
		userID, sessionID, valid := s.session(t)
		kid := s.app.Keys().SigningKeyID()

		otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatalf("generate key: %v", err)
		}
		signWithOtherKey := func(input []byte) []byte {
			digest := sha256.Sum256(input)
			signature, err := rsa.SignPKCS1v15(rand.Reader, otherKey, crypto.SHA256, digest[:])
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			return signature
		}
		publicKey, _ := s.app.Keys().VerificationKey(kid)
		publicDER, err := x509.MarshalPKIXPublicKey(publicKey)
		if err != nil {
			t.Fatalf("marshal public key: %v", err)
		}
		claims := s.claims(userID, sessionID)

		cases := map[string]string{
			"unknown kid":          handToken(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "not-in-the-jwks"}, claims, signWithOtherKey),
			"known kid, other key": handToken(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims, signWithOtherKey),
			"alg none":             handToken(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims, func([]byte) []byte { return nil }),
			"HS256 with the public key": handToken(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims, func(input []byte) []byte {
				mac := hmac.New(sha256.New, publicDER)
				mac.Write(input)
				return mac.Sum(nil)
			}),
			"wrong audience": s.token(t, userID, sessionID, map[string]any{"aud": "someone-else"}),
			"garbage":        "not.a.token",
		}
		for name, token := range cases {
			t.Run(name, func(t *testing.T) {
				res := s.get(t, "/v1/entitlements", token)
				if res.status != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401 (%s)", res.status, res.body)
				}
				if code := res.envelopeError(t).Code; code != "UNAUTHORIZED" {
					t.Errorf("code = %q, want UNAUTHORIZED", code)
				}
			})
		}
		if !strings.Contains(s.logs.String(), "not-in-the-jwks") {
			t.Error("the log does not name the unknown kid")
		}

		t.Run("valid", func(t *testing.T) {
			res := s.get(t, "/v1/entitlements", valid)
			if res.status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (%s)", res.status, res.body)
			}
			var entitlements runtime.Entitlements
			res.data(t, &entitlements)
			if entitlements.Tier != "core" || entitlements.Source != "default" {
				t.Errorf("entitlements = %+v, want core from default", entitlements)
			}
			if entitlements.Limits.RequestsPerMinute != 60 {
				t.Errorf("requests per minute = %d, want 60", entitlements.Limits.RequestsPerMinute)
			}
			for _, header := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Request-Id"} {
				if res.header.Get(header) == "" {
					t.Errorf("header %s missing", header)
				}
			}
			if got := res.header.Get("X-RateLimit-Limit"); got != "60" {
				t.Errorf("X-RateLimit-Limit = %q, want 60", got)
			}
		})

		t.Run("expired", func(t *testing.T) {
			s.clock.Advance(s.cfg.Tokens.AccessTTL + s.cfg.Tokens.Leeway + time.Second)
			res := s.get(t, "/v1/entitlements", valid)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401 for an expired token", res.status)
			}
		})
	})
}

func TestEndedSessionRejectedBeforeTokenExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOption{engine: e})
		_, sessionID, token := s.session(t)

		if res := s.get(t, "/v1/entitlements", token); res.status != http.StatusOK {
			t.Fatalf("before revocation: %d %s", res.status, res.body)
		}
		if err := storage.NewSessions(s.app.DB()).Revoke(context.Background(), sessionID, s.clock.Now()); err != nil {
			t.Fatalf("revoke: %v", err)
		}

		// The actor reads the session again once its view is older than the
		// recheck interval, long before the 15-minute token expires.
		s.clock.Advance(s.cfg.Actors.SessionRecheckInterval)
		res := s.get(t, "/v1/entitlements", token)
		if res.status != http.StatusUnauthorized {
			t.Fatalf("after revocation: status = %d, want 401", res.status)
		}
		if s.cfg.Actors.SessionRecheckInterval >= s.cfg.Tokens.AccessTTL {
			t.Fatal("the recheck interval is not shorter than the token lifetime")
		}
	})
}

func TestUserRateLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOption{engine: e})

		t.Run("61st request", func(t *testing.T) {
			_, _, token := s.session(t)
			for i := 1; i <= 60; i++ {
				if res := s.get(t, "/v1/entitlements", token); res.status != http.StatusOK {
					t.Fatalf("request %d = %d, want 200", i, res.status)
				}
			}
			res := s.get(t, "/v1/entitlements", token)
			if res.status != http.StatusTooManyRequests {
				t.Fatalf("61st request = %d, want 429", res.status)
			}
			if code := res.envelopeError(t).Code; code != "RATE_LIMITED" {
				t.Errorf("code = %q, want RATE_LIMITED", code)
			}
			if got := res.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1 (one second rounded up)", got)
			}
			if got := res.header.Get("X-RateLimit-Remaining"); got != "0" {
				t.Errorf("X-RateLimit-Remaining = %q, want 0", got)
			}

			s.clock.Advance(time.Second)
			if res := s.get(t, "/v1/entitlements", token); res.status != http.StatusOK {
				t.Errorf("after Retry-After = %d, want 200", res.status)
			}
		})

		t.Run("200 concurrent", func(t *testing.T) {
			_, _, token := s.session(t)
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res := s.get(t, "/v1/entitlements", token)
					mu.Lock()
					statuses[res.status]++
					mu.Unlock()
				}()
			}
			wg.Wait()

			tier := s.cfg.Tiers.Catalog["core"].Limits
			if statuses[http.StatusOK] > tier.Burst {
				t.Errorf("admitted %d of 200, want at most the burst of %d", statuses[http.StatusOK], tier.Burst)
			}
			if statuses[http.StatusOK] > tier.RequestsPerMinute+tier.Burst {
				t.Errorf("admitted %d, more than the limit plus the burst", statuses[http.StatusOK])
			}
			if statuses[http.StatusOK]+statuses[http.StatusTooManyRequests] != 200 {
				t.Errorf("statuses = %v, want only 200 and 429", statuses)
			}
		})
	})
}

func TestIPRateLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOption{engine: e})

		for i := 1; i <= 20; i++ {
			if res := s.get(t, "/v1/entitlements/tiers", ""); res.status != http.StatusOK {
				t.Fatalf("request %d = %d, want 200", i, res.status)
			}
		}
		res := s.get(t, "/v1/entitlements/tiers", "")
		if res.status != http.StatusTooManyRequests {
			t.Fatalf("21st request = %d, want 429", res.status)
		}
		if res.header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After = %q, want 3 (one request per 3 s)", res.header.Get("Retry-After"))
		}
		if code := res.envelopeError(t).Code; code != "RATE_LIMITED" {
			t.Errorf("code = %q, want RATE_LIMITED", code)
		}
		if res := s.get(t, "/health", ""); res.status != http.StatusOK {
			t.Errorf("/health = %d, want 200: system endpoints are not IP-limited", res.status)
		}
	})
}
