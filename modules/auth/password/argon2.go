// Package password hashes passwords with Argon2id and checks new passwords
// against the length and common-password policy.
//
// Hashes are PHC strings that record their own parameters, so raising the
// parameters affects only new hashes, and NeedsRehash reports which
// stored hashes to replace after the next successful login.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Bounds that Params.Validate enforces, both for new hashes and for the
// parameters recorded in a stored hash.
const (
	minMemoryKiB   = 8 * 1024        // 8 MiB
	maxMemoryKiB   = 4 * 1024 * 1024 // 4 GiB
	minIterations  = 1
	maxIterations  = 20
	minParallelism = 1
	maxParallelism = 16
	minSaltBytes   = 16
	minKeyBytes    = 16
	maxKeyBytes    = 64
)

// phcID is the algorithm identifier in the PHC string format.
const phcID = "argon2id"

// ErrMalformedHash is wrapped by Verify's error when the stored hash is not
// an Argon2id PHC string that this package can verify.
var ErrMalformedHash = errors.New("malformed argon2id hash")

// Params are the Argon2id cost parameters and output sizes.
type Params struct {
	// MemoryKiB is the memory cost in KiB (argon2's m).
	MemoryKiB uint32
	// Iterations is the number of passes over the memory (argon2's t).
	Iterations uint32
	// Parallelism is the number of lanes (argon2's p).
	Parallelism uint8
	// SaltBytes is the length of the random salt in bytes.
	SaltBytes uint32
	// KeyBytes is the length of the derived key in bytes.
	KeyBytes uint32
}

// DefaultParams returns the argon2id configuration that OWASP's Password
// Storage Cheat Sheet recommends (m=19456 KiB, t=2, p=1), with a 16-byte
// salt and a 32-byte key.
func DefaultParams() Params {
	return Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, SaltBytes: 16, KeyBytes: 32}
}

// Validate returns an error naming the first parameter outside its bounds:
// memory 8 MiB to 4 GiB, iterations 1 to 20, parallelism 1 to 16, salt at
// least 16 bytes, key 16 to 64 bytes.
func (p Params) Validate() error {
	switch {
	case p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is out of range [%d, %d]", p.MemoryKiB, minMemoryKiB, maxMemoryKiB)
	case p.Iterations < minIterations || p.Iterations > maxIterations:
		return fmt.Errorf("argon2id iterations %d is out of range [%d, %d]", p.Iterations, minIterations, maxIterations)
	case p.Parallelism < minParallelism || p.Parallelism > maxParallelism:
		return fmt.Errorf("argon2id parallelism %d is out of range [%d, %d]", p.Parallelism, minParallelism, maxParallelism)
	case p.SaltBytes < minSaltBytes:
		return fmt.Errorf("argon2id salt of %d bytes is shorter than %d bytes", p.SaltBytes, minSaltBytes)
	case p.KeyBytes < minKeyBytes || p.KeyBytes > maxKeyBytes:
		return fmt.Errorf("argon2id key of %d bytes is out of range [%d, %d]", p.KeyBytes, minKeyBytes, maxKeyBytes)
	}
	return nil
}

// Hash derives an Argon2id key from password and a fresh random salt and
// returns it as a PHC string such as
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>", with salt and key in
// unpadded standard base64. It returns an error when p is invalid.
func Hash(password string, p Params) (string, error) {
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}

	salt := make([]byte, p.SaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}

	key := deriveKey(password, salt, p)
	return encodePHC(p, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, derived
// again with the parameters that encoded records and compared in constant
// time. A wrong password returns (false, nil). A string that is not a
// well-formed argon2id v=19 hash, or whose parameters are outside the bounds
// of Params.Validate, returns an error wrapping ErrMalformedHash.
func Verify(password, encoded string) (bool, error) {
	p, salt, key, err := decodePHC(encoded)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}

	derived := deriveKey(password, salt, p)
	return subtle.ConstantTimeCompare(derived, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than p,
// including salt and key lengths, or cannot be parsed at all. Callers rehash
// the password after a successful Verify when it returns true.
func NeedsRehash(encoded string, p Params) bool {
	recorded, _, _, err := decodePHC(encoded)
	if err != nil {
		return true
	}
	return recorded != p
}

// dummySaltByte and dummyKeyByte fill the salt and key of the fixed hash that
// DummyVerify checks against. Their values do not matter, only the lengths.
const (
	dummySaltByte = 0x5a
	dummyKeyByte  = 0xa5
)

// DummyVerify does the work of one Verify with parameters p against a fixed
// hash and discards the result. Login calls it for an unknown email so that
// the response time does not reveal whether the account exists. When p is
// invalid it uses DefaultParams, the parameters Hash would otherwise reject.
func DummyVerify(password string, p Params) {
	if p.Validate() != nil {
		p = DefaultParams()
	}

	salt := make([]byte, p.SaltBytes)
	key := make([]byte, p.KeyBytes)
	for i := range salt {
		salt[i] = dummySaltByte
	}
	for i := range key {
		key[i] = dummyKeyByte
	}

	// Going through Verify keeps the parsing and comparison cost identical
	// to a real login.
	_, _ = Verify(password, encodePHC(p, salt, key))
}

func deriveKey(password string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyBytes)
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		phcID, argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// decodePHC parses "$argon2id$v=19$m=M,t=T,p=P$SALT$KEY". It accepts only
// that field order, decimal numbers without signs or leading zeros, and
// unpadded standard base64, and checks the result with Params.Validate so
// that a tampered row cannot request an unbounded amount of memory or time.
func decodePHC(encoded string) (Params, []byte, []byte, error) {
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return Params{}, nil, nil, fmt.Errorf("%w: expected 5 fields separated by '$'", ErrMalformedHash)
	}
	if fields[1] != phcID {
		return Params{}, nil, nil, fmt.Errorf("%w: algorithm %q is not %s", ErrMalformedHash, fields[1], phcID)
	}

	version, err := parseField(fields[2], "v", 32)
	if err != nil {
		return Params{}, nil, nil, err
	}
	if version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: version %d is not %d", ErrMalformedHash, version, argon2.Version)
	}

	costs := strings.Split(fields[3], ",")
	if len(costs) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: expected parameters m, t and p", ErrMalformedHash)
	}
	memory, err := parseField(costs[0], "m", 32)
	if err != nil {
		return Params{}, nil, nil, err
	}
	iterations, err := parseField(costs[1], "t", 32)
	if err != nil {
		return Params{}, nil, nil, err
	}
	parallelism, err := parseField(costs[2], "p", 8)
	if err != nil {
		return Params{}, nil, nil, err
	}

	salt, err := base64.RawStdEncoding.Strict().DecodeString(fields[4])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(fields[5])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: key: %v", ErrMalformedHash, err)
	}

	p := Params{
		MemoryKiB:   uint32(memory),
		Iterations:  uint32(iterations),
		Parallelism: uint8(parallelism),
		SaltBytes:   uint32(len(salt)),
		KeyBytes:    uint32(len(key)),
	}
	if err := p.Validate(); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// parseField parses "name=value" where value is an unsigned decimal that
// fits in bits bits.
func parseField(field, name string, bits int) (uint64, error) {
	value, ok := strings.CutPrefix(field, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: expected %s=<number>, found %q", ErrMalformedHash, name, field)
	}
	if value == "" || value[0] < '0' || value[0] > '9' || (len(value) > 1 && value[0] == '0') {
		return 0, fmt.Errorf("%w: %s=%q is not a decimal number without leading zeros", ErrMalformedHash, name, value)
	}

	n, err := strconv.ParseUint(value, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrMalformedHash, name, err)
	}
	return n, nil
}
