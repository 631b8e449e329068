package bearer

import (
	"crypto/rsa"
	"testing"
	"time"
)

// benchVerifier returns a Verifier on the system clock and a token that
// verifies for an hour, as the edge would see them.
func benchVerifier(b *testing.B, cacheEntries int) (*Verifier, string) {
	b.Helper()
	signing, _ := rsaKeys(b)

	verifier := New(Options{
		Keys:         &keySource{keys: map[string]*rsa.PublicKey{testKID: &signing.PublicKey}},
		Issuer:       testIssuer,
		Audience:     testAudience,
		Leeway:       testLeeway,
		CacheEntries: cacheEntries,
	})
	claims := validClaims()
	now := time.Now()
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(time.Hour).Unix()
	return verifier, signToken(b, signing, rs256Header(), claims)
}

func BenchmarkVerifyCached(b *testing.B) {
	verifier, token := benchVerifier(b, 10000)
	if _, err := verifier.Verify(token); err != nil {
		b.Fatalf("Verify: %v", err)
	}

	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	verifier, token := benchVerifier(b, 10000)
	if _, err := verifier.Verify(token); err != nil {
		b.Fatalf("Verify: %v", err)
	}

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := verifier.Verify(token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkVerifyUncached(b *testing.B) {
	verifier, token := benchVerifier(b, 0)

	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
