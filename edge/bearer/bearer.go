// Package bearer verifies the RS256 access tokens that clients send in the
// Authorization header, and caches the claims of verified tokens so a
// repeated token costs a hash and a map lookup instead of an RSA verify.
package bearer

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// maxTokenBytes bounds the token length so an oversized header cannot make
// the verifier hash or decode much data. An RS256 access token with the
// claims nexus issues is under 1 KiB, of which the signature is 342 characters.
const maxTokenBytes = 8 << 10

// algorithmRS256 is the only alg accepted in a token header.
const algorithmRS256 = "RS256"

// KeySource returns the RSA public key for a kid while that key verifies
// tokens. runtime/keyring.Keyring implements it. It is called on every
// request, cache hits included, so it must be cheap and safe for concurrent use.
type KeySource interface {
	VerificationKey(kid string) (*rsa.PublicKey, bool)
}

// Options configures a Verifier.
type Options struct {
	// Keys resolves the kid of a token header.
	Keys KeySource
	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience must equal the token's aud claim, or one element of it when
	// aud is an array.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
	// Clock is the time source. Nil means the system clock.
	Clock clock.Clock
	// CacheEntries caps how many verified tokens are cached. Zero or less
	// disables the cache.
	CacheEntries int
}

// Claims are the verified claims of an access token.
type Claims struct {
	// Subject is the sub claim, the user id.
	Subject string
	// SessionID is the sid claim, the session the token belongs to.
	SessionID string
	// ID is the jti claim, or "" when the token has none.
	ID string
	// KeyID is the kid of the key that signed the token.
	KeyID string
	// IssuedAt is the iat claim, or the zero time when the token has none.
	IssuedAt time.Time
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	keys     KeySource
	issuer   string
	audience string
	leeway   time.Duration
	clock    clock.Clock
	cache    *cache
	// verifySignature is rsa.VerifyPKCS1v15; tests replace it to count calls.
	verifySignature func(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error
}

// New returns a Verifier for opts. opts.Keys must not be nil.
func New(opts Options) *Verifier {
	clk := opts.Clock
	if clk == nil {
		clk = clock.System{}
	}
	return &Verifier{
		keys:     opts.Keys,
		issuer:   opts.Issuer,
		audience: opts.Audience,
		leeway:   opts.Leeway,
		clock:    clk,
		cache:    newCache(opts.CacheEntries),

		verifySignature: rsa.VerifyPKCS1v15,
	}
}

// tokenHeader is the part of the JOSE header that the verifier reads.
type tokenHeader struct {
	Algorithm string          `json:"alg"`
	KeyID     string          `json:"kid"`
	Critical  json.RawMessage `json:"crit"`
}

// tokenPayload is the part of the payload that the verifier reads.
type tokenPayload struct {
	Issuer    string      `json:"iss"`
	Audience  audience    `json:"aud"`
	Subject   string      `json:"sub"`
	SessionID string      `json:"sid"`
	ID        string      `json:"jti"`
	ExpiresAt numericDate `json:"exp"`
	NotBefore numericDate `json:"nbf"`
	IssuedAt  numericDate `json:"iat"`
}

// Verify checks token and returns its claims. The header's alg must be
// RS256 and its kid must name a key of the KeySource, and the signature must
// verify with that key. The iss and aud claims must match the options. The
// exp claim is required and must not have passed by more than the leeway.
// The nbf and iat claims, when present, must not be later than now plus the
// leeway. The sub and sid claims must be non-empty strings.
//
// A token verified before is found in the cache by its SHA-256 digest until
// exp plus the leeway, and is rejected when its kid no longer verifies.
//
// Every error wraps one of ErrMalformed, ErrAlgorithm, ErrUnknownKey (as
// *UnknownKeyError), ErrSignature, ErrExpired, ErrNotYetValid or ErrClaims.
// An error may quote the kid, iss or a date claim, but never the token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes is longer than %d", ErrMalformed, len(token), maxTokenBytes)
	}

	var digest [sha256.Size]byte
	if v.cache != nil {
		// Hash the string without copying it. Sum256 only reads the slice.
		digest = sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
		claims, ok, err := v.verifyCached(digest)
		if ok || err != nil {
			return claims, err
		}
	}

	claims, public, err := v.verify(token)
	if err != nil {
		return Claims{}, err
	}

	if v.cache != nil {
		v.cache.put(digest, cacheEntry{
			claims:     claims,
			public:     public,
			validUntil: claims.ExpiresAt.Add(v.leeway),
		}, v.clock.Now())
	}
	return claims, nil
}

// verifyCached returns the cached claims for digest when they are still
// valid. ok is false when the token must be verified in full.
func (v *Verifier) verifyCached(digest [sha256.Size]byte) (claims Claims, ok bool, err error) {
	entry, found := v.cache.get(digest)
	if !found {
		return Claims{}, false, nil
	}

	if !v.clock.Now().Before(entry.validUntil) {
		v.cache.remove(digest)
		return Claims{}, false, nil
	}

	public, found := v.keys.VerificationKey(entry.claims.KeyID)
	if !found {
		v.cache.remove(digest)
		return Claims{}, false, &UnknownKeyError{KeyID: entry.claims.KeyID}
	}
	if public != entry.public && !public.Equal(entry.public) {
		// The kid now names another key, so the cached signature check no longer holds.
		v.cache.remove(digest)
		return Claims{}, false, nil
	}
	return entry.claims, true, nil
}

// verify checks token in full and returns its claims and the key that
// verified it.
func (v *Verifier) verify(token string) (Claims, *rsa.PublicKey, error) {
	headerPart, rest, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, nil, fmt.Errorf("%w: expected three dot-separated parts", ErrMalformed)
	}
	payloadPart, signaturePart, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(signaturePart, ".") {
		return Claims{}, nil, fmt.Errorf("%w: expected three dot-separated parts", ErrMalformed)
	}

	header, err := decodeHeader(headerPart)
	if err != nil {
		return Claims{}, nil, err
	}

	// The algorithm is fixed before any key is looked up, so a token cannot
	// choose how its signature is checked (such as "none", or HS256 keyed
	// with the RSA public key).
	if header.Algorithm != algorithmRS256 {
		return Claims{}, nil, fmt.Errorf("%w: alg %q, expected %s", ErrAlgorithm, header.Algorithm, algorithmRS256)
	}
	if header.Critical != nil {
		return Claims{}, nil, fmt.Errorf("%w: crit header names extensions this verifier does not support", ErrMalformed)
	}
	if header.KeyID == "" {
		return Claims{}, nil, fmt.Errorf("%w: missing kid header", ErrMalformed)
	}

	public, found := v.keys.VerificationKey(header.KeyID)
	if !found {
		return Claims{}, nil, &UnknownKeyError{KeyID: header.KeyID}
	}

	signature, err := base64.RawURLEncoding.Strict().DecodeString(signaturePart)
	if err != nil {
		return Claims{}, nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	// The signing input is "header.payload", the token's prefix.
	signed := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(headerPart)+1+len(payloadPart)))
	if err := v.verifySignature(public, crypto.SHA256, signed[:], signature); err != nil {
		return Claims{}, nil, fmt.Errorf("%w: kid %q", ErrSignature, header.KeyID)
	}

	payload, err := decodePayload(payloadPart)
	if err != nil {
		return Claims{}, nil, err
	}
	if err := v.checkClaims(payload); err != nil {
		return Claims{}, nil, err
	}

	return Claims{
		Subject:   payload.Subject,
		SessionID: payload.SessionID,
		ID:        payload.ID,
		KeyID:     header.KeyID,
		IssuedAt:  payload.IssuedAt.time,
		ExpiresAt: payload.ExpiresAt.time,
	}, public, nil
}

func (v *Verifier) checkClaims(payload tokenPayload) error {
	if payload.Issuer != v.issuer {
		return fmt.Errorf("%w: iss %q, expected %q", ErrIssuer, payload.Issuer, v.issuer)
	}
	if !payload.Audience.contains(v.audience) {
		return fmt.Errorf("%w: aud does not contain %q", ErrAudience, v.audience)
	}

	now := v.clock.Now()
	if !payload.ExpiresAt.set {
		return fmt.Errorf("%w: missing exp", ErrClaims)
	}
	if !now.Before(payload.ExpiresAt.time.Add(v.leeway)) {
		return fmt.Errorf("%w: exp %s", ErrExpired, payload.ExpiresAt.time.Format(time.RFC3339))
	}
	latest := now.Add(v.leeway)
	if payload.NotBefore.set && payload.NotBefore.time.After(latest) {
		return fmt.Errorf("%w: nbf %s", ErrNotYetValid, payload.NotBefore.time.Format(time.RFC3339))
	}
	if payload.IssuedAt.set && payload.IssuedAt.time.After(latest) {
		return fmt.Errorf("%w: iat %s", ErrNotYetValid, payload.IssuedAt.time.Format(time.RFC3339))
	}

	if payload.Subject == "" {
		return fmt.Errorf("%w: missing sub", ErrClaims)
	}
	if payload.SessionID == "" {
		return fmt.Errorf("%w: missing sid", ErrClaims)
	}
	return nil
}

func decodeHeader(part string) (tokenHeader, error) {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return tokenHeader{}, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}

	var header tokenHeader
	if err := json.Unmarshal(raw, &header); err != nil {
		return tokenHeader{}, fmt.Errorf("%w: header is not a JSON object of strings", ErrMalformed)
	}
	return header, nil
}

func decodePayload(part string) (tokenPayload, error) {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return tokenPayload{}, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}

	var payload tokenPayload
	err = json.Unmarshal(raw, &payload)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return payload, nil
	case errors.Is(err, ErrClaims):
		return tokenPayload{}, err
	case errors.As(err, &typeErr):
		return tokenPayload{}, fmt.Errorf("%w: claim %s is a JSON %s", ErrClaims, typeErr.Field, typeErr.Value)
	default:
		return tokenPayload{}, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
}

// numericDate is a JWT NumericDate: seconds since the Unix epoch, possibly
// with a fraction. set is false when the claim is absent.
type numericDate struct {
	time time.Time
	set  bool
}

// maxNumericDate bounds a NumericDate to about 33658 AD, far beyond any real
// token, so the conversion to nanoseconds cannot overflow.
const maxNumericDate = 1e12

func (d *numericDate) UnmarshalJSON(data []byte) error {
	var seconds float64
	if bytes.Equal(data, []byte("null")) || json.Unmarshal(data, &seconds) != nil {
		return fmt.Errorf("%w: date claim is not a number", ErrClaims)
	}
	if seconds < 0 || seconds > maxNumericDate {
		return fmt.Errorf("%w: date claim %v is out of range", ErrClaims, seconds)
	}

	whole := int64(seconds)
	fraction := int64((seconds - float64(whole)) * float64(time.Second))
	d.time = time.Unix(whole, fraction).UTC()
	d.set = true
	return nil
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		return fmt.Errorf("%w: aud is null", ErrClaims)
	}

	var single string
	if err := json.Unmarshal(data, &single); err == nil {
		*a = audience{single}
		return nil
	}

	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrClaims)
	}
	*a = list
	return nil
}

func (a audience) contains(value string) bool {
	for _, element := range a {
		if element == value {
			return true
		}
	}
	return false
}
