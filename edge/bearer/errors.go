package bearer

import (
	"errors"
	"fmt"
)

// The errors that Verify returns wrap one of these. The edge responds to all
// of them with 401 UNAUTHORIZED.
var (
	// ErrMalformed means the token is not three base64url parts with a JSON
	// header and a JSON payload, or is longer than maxTokenBytes.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm means the header's alg is not RS256.
	ErrAlgorithm = errors.New("unsupported token algorithm")
	// ErrUnknownKey means the header's kid names no key that verifies.
	// The error is an *UnknownKeyError carrying the kid.
	ErrUnknownKey = errors.New("unknown token signing key")
	// ErrSignature means the RS256 signature does not match the key.
	ErrSignature = errors.New("invalid token signature")
	// ErrExpired means exp plus the leeway has passed.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid means nbf or iat is later than now plus the leeway.
	ErrNotYetValid = errors.New("token not valid yet")
	// ErrClaims means a required claim is missing or has the wrong type.
	ErrClaims = errors.New("invalid token claims")
	// ErrIssuer means iss differs from the expected issuer. It wraps ErrClaims.
	ErrIssuer = fmt.Errorf("%w: wrong issuer", ErrClaims)
	// ErrAudience means aud does not contain the expected audience. It wraps ErrClaims.
	ErrAudience = fmt.Errorf("%w: wrong audience", ErrClaims)
)

// UnknownKeyError is the error for a token whose kid names no key that
// verifies, such as a key that expired after a rotation. It wraps
// ErrUnknownKey. KeyID comes from the token and is safe to log.
type UnknownKeyError struct {
	KeyID string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%v: kid %q", ErrUnknownKey, e.KeyID)
}

// Unwrap returns ErrUnknownKey.
func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }
