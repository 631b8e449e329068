package keyring

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"time"
)

// jsonWebKey is the public part of an RSA key as RFC 7517 and RFC 7518
// section 6.3.1 describe it.
type jsonWebKey struct {
	KeyType   string `json:"kty"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
	KeyID     string `json:"kid"`
	Modulus   string `json:"n"`
	Exponent  string `json:"e"`
}

type jsonWebKeySet struct {
	Keys []jsonWebKey `json:"keys"`
}

// buildJWKS encodes the keys in rows that verify at now. Rows whose public
// key does not parse are left out, because buildSet has already rejected them.
func buildJWKS(rows []keyRow, now time.Time) []byte {
	set := jsonWebKeySet{Keys: []jsonWebKey{}}
	for _, row := range rows {
		if !row.verifies(now) {
			continue
		}
		parsed, err := x509.ParsePKIXPublicKey(row.publicDER)
		if err != nil {
			continue
		}
		public, ok := parsed.(*rsa.PublicKey)
		if !ok {
			continue
		}

		set.Keys = append(set.Keys, jsonWebKey{
			KeyType:   "RSA",
			Use:       "sig",
			Algorithm: AlgorithmRS256,
			KeyID:     row.kid,
			Modulus:   base64.RawURLEncoding.EncodeToString(public.N.Bytes()),
			Exponent:  base64.RawURLEncoding.EncodeToString(big.NewInt(int64(public.E)).Bytes()),
		})
	}

	// The set contains only strings and slices of strings, which encoding/json always marshals.
	encoded, _ := json.Marshal(set)
	return encoded
}
