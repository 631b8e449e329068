package keyring

import (
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Sign returns a compact RS256 JWT of claims signed by the key that signs
// at the clock's current time, with the protected headers alg, kid (that
// key's kid) and typ "JWT". The registered claims (exp, iat, nbf) take a
// time.Time or a number of seconds, and aud a string or a []string, as
// jwt.Token.Set accepts them. Sign sets no claim
// itself. It returns ErrNoSigningKey when no key can sign.
func (k *Keyring) Sign(claims map[string]any) (string, error) {
	signer := k.set.Load().signerAt(k.clock.Now())
	if signer == nil {
		return "", ErrNoSigningKey
	}

	token := jwt.New()
	for name, value := range claims {
		if err := token.Set(name, value); err != nil {
			return "", fmt.Errorf("set claim %s: %w", name, err)
		}
	}

	headers := jws.NewHeaders()
	if err := headers.Set(jws.KeyIDKey, signer.kid); err != nil {
		return "", fmt.Errorf("set kid header: %w", err)
	}
	if err := headers.Set(jws.TypeKey, "JWT"); err != nil {
		return "", fmt.Errorf("set typ header: %w", err)
	}

	signed, err := jwt.Sign(token, jwt.WithKey(jwa.RS256, signer.private, jws.WithProtectedHeaders(headers)))
	if err != nil {
		return "", fmt.Errorf("sign token with key %s: %w", signer.kid, err)
	}
	return string(signed), nil
}
