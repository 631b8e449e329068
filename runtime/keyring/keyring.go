package keyring

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// AlgorithmRS256 is the only value of signing_keys.algorithm this package
// creates and loads.
const AlgorithmRS256 = "RS256"

// rsaKeyBits is the modulus size of generated signing keys.
const rsaKeyBits = 2048

// kidBytes is how many bytes of the public key's SHA-256 digest form a kid.
const kidBytes = 16

// ErrNoSigningKey is returned by Sign when no loaded key can sign, because
// Ensure has not run or the signing key has retired.
var ErrNoSigningKey = errors.New("no signing key loaded (run Ensure or Reload)")

// Keyring holds the token signing keys of the signing_keys table: the one
// that signs new tokens and every key that still verifies tokens. All
// methods are safe for concurrent use, and Sign, VerificationKey and JWKS
// take no lock.
type Keyring struct {
	db        *storage.DB
	masterKey []byte
	clock     clock.Clock
	logger    *slog.Logger

	// writeMu serializes Ensure, Rotate and Reload. JWKS replaces set by
	// compare-and-swap without it.
	writeMu sync.Mutex
	set     atomic.Pointer[keySet]
	// skippedKIDs records the rows with an unknown algorithm already logged.
	skippedKIDs map[string]bool
}

// keySet is an immutable snapshot of the loaded keys.
type keySet struct {
	rows []keyRow
	// byKID contains every key that verifies. VerificationKey rejects a key
	// past its expiresAt even before the set is rebuilt.
	byKID  map[string]*verificationKey
	signer *signingKey
	jwks   []byte
	// jwksExpiresAt is the earliest expiry among the keys in jwks, or zero.
	// At that time JWKS rebuilds the set without the expired keys.
	jwksExpiresAt time.Time
}

type verificationKey struct {
	public    *rsa.PublicKey
	expiresAt time.Time
}

type signingKey struct {
	kid       string
	private   *rsa.PrivateKey
	retiresAt time.Time
}

// New returns a Keyring with no keys loaded. Call Ensure before Sign.
// masterKey must be the 32 bytes from LoadMasterKey.
func New(db *storage.DB, masterKey []byte, clk clock.Clock, logger *slog.Logger) *Keyring {
	if clk == nil {
		clk = clock.System{}
	}
	if logger == nil {
		logger = slog.Default()
	}

	k := &Keyring{
		db:          db,
		masterKey:   masterKey,
		clock:       clk,
		logger:      logger,
		skippedKIDs: map[string]bool{},
	}
	k.set.Store(&keySet{byKID: map[string]*verificationKey{}, jwks: buildJWKS(nil, time.Time{})})
	return k
}

// Ensure loads the keys and, when none can sign, generates an RSA-2048 key,
// stores it sealed by the master key and loads it. When several processes
// run Ensure on an empty table at once, one key is stored and all of them
// load it.
func (k *Keyring) Ensure(ctx context.Context) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()

	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("ensure signing key: %w", err)
	}
	if k.set.Load().signer != nil {
		return nil
	}

	now := k.clock.Now()
	row, err := k.generateKey(now)
	if err != nil {
		return fmt.Errorf("ensure signing key: %w", err)
	}
	inserted, err := insertFirstSigningKey(ctx, k.db, row, now)
	if err != nil {
		return fmt.Errorf("ensure signing key: %w", err)
	}
	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("ensure signing key: %w", err)
	}

	set := k.set.Load()
	if set.signer == nil {
		return fmt.Errorf("ensure signing key: %w", ErrNoSigningKey)
	}
	if inserted {
		k.logger.Info("created signing key", "kid", row.kid)
	} else {
		k.logger.Info("loaded signing key created by another process", "kid", set.signer.kid)
	}
	return nil
}

// Rotate adds a new key that signs from now on. Every key that could sign
// until now retires at once and keeps verifying for overlap, which should
// be the access-token TTL plus the verifier's leeway. A zero overlap
// invalidates the tokens they signed at once. It returns the new key's kid.
func (k *Keyring) Rotate(ctx context.Context, overlap time.Duration) (string, error) {
	if overlap < 0 {
		return "", fmt.Errorf("rotate signing key: overlap %v is negative", overlap)
	}

	k.writeMu.Lock()
	defer k.writeMu.Unlock()

	now := k.clock.Now()
	row, err := k.generateKey(now)
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	retired, err := rotateKeys(ctx, k.db, row, now, now.Add(overlap))
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if err := k.reloadLocked(ctx); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}

	k.logger.Info("rotated signing key", "kid", row.kid, "retired_keys", retired, "overlap", overlap)
	return row.kid, nil
}

// Reload reads the signing_keys table again, to pick up keys that other
// processes added or retired. Keys past their expires_at are dropped. It
// returns an error when the signing key cannot be opened with the master key.
func (k *Keyring) Reload(ctx context.Context) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()

	if err := k.reloadLocked(ctx); err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	return nil
}

func (k *Keyring) reloadLocked(ctx context.Context) error {
	now := k.clock.Now()
	rows, err := selectKeys(ctx, k.db, now)
	if err != nil {
		return err
	}

	known := rows[:0]
	for _, row := range rows {
		if row.algorithm == AlgorithmRS256 {
			known = append(known, row)
			continue
		}
		if !k.skippedKIDs[row.kid] {
			k.skippedKIDs[row.kid] = true
			k.logger.Warn("skipped signing key with unsupported algorithm", "kid", row.kid, "algorithm", row.algorithm)
		}
	}

	set, err := k.buildSet(known, now, k.set.Load())
	if err != nil {
		return err
	}
	k.set.Store(set)
	return nil
}

// buildSet returns the set of rows that verify at now. It reuses the
// previous signer's private key when the signer has not changed.
func (k *Keyring) buildSet(rows []keyRow, now time.Time, previous *keySet) (*keySet, error) {
	set := &keySet{byKID: make(map[string]*verificationKey, len(rows))}

	for _, row := range rows {
		if !row.verifies(now) {
			continue
		}

		parsed, err := x509.ParsePKIXPublicKey(row.publicDER)
		if err != nil {
			return nil, fmt.Errorf("parse public key %s: %w", row.kid, err)
		}
		public, ok := parsed.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("parse public key %s: %T is not an RSA key", row.kid, parsed)
		}

		set.rows = append(set.rows, row)
		set.byKID[row.kid] = &verificationKey{public: public, expiresAt: row.expiresAt}
		if !row.expiresAt.IsZero() && (set.jwksExpiresAt.IsZero() || row.expiresAt.Before(set.jwksExpiresAt)) {
			set.jwksExpiresAt = row.expiresAt
		}

		// Rows come newest first, so the first one that can sign is the signer.
		if set.signer == nil && row.canSign(now) {
			signer, err := k.openSigner(row, previous)
			if err != nil {
				return nil, err
			}
			set.signer = signer
		}
	}

	set.jwks = buildJWKS(set.rows, now)
	return set, nil
}

func (k *Keyring) openSigner(row keyRow, previous *keySet) (*signingKey, error) {
	if previous != nil && previous.signer != nil && previous.signer.kid == row.kid {
		return &signingKey{kid: row.kid, private: previous.signer.private, retiresAt: row.retiresAt}, nil
	}

	der, err := Open(k.masterKey, row.sealed, []byte(row.kid))
	if err != nil {
		return nil, fmt.Errorf("open private key %s: %w", row.kid, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key %s: %w", row.kid, err)
	}
	private, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key %s: %T is not an RSA key", row.kid, parsed)
	}
	return &signingKey{kid: row.kid, private: private, retiresAt: row.retiresAt}, nil
}

// generateKey creates an RSA key and the row that stores it, sealed.
func (k *Keyring) generateKey(now time.Time) (keyRow, error) {
	private, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return keyRow{}, fmt.Errorf("generate RSA key: %w", err)
	}
	publicDER, err := x509.MarshalPKIXPublicKey(&private.PublicKey)
	if err != nil {
		return keyRow{}, fmt.Errorf("encode public key: %w", err)
	}
	privateDER, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return keyRow{}, fmt.Errorf("encode private key: %w", err)
	}

	kid := KeyID(publicDER)
	sealed, err := Seal(k.masterKey, privateDER, []byte(kid))
	if err != nil {
		return keyRow{}, fmt.Errorf("seal private key %s: %w", kid, err)
	}

	return keyRow{
		kid:       kid,
		algorithm: AlgorithmRS256,
		publicDER: publicDER,
		sealed:    sealed,
		createdAt: now,
	}, nil
}

// KeyID returns the kid of a public key: the first 16 bytes of the SHA-256
// digest of its PKIX DER encoding, in unpadded base64url (22 characters).
func KeyID(publicDER []byte) string {
	digest := sha256.Sum256(publicDER)
	return base64.RawURLEncoding.EncodeToString(digest[:kidBytes])
}

// VerificationKey returns the public key with the given kid while it still
// verifies tokens. It takes no lock.
func (k *Keyring) VerificationKey(kid string) (*rsa.PublicKey, bool) {
	key, ok := k.set.Load().byKID[kid]
	if !ok {
		return nil, false
	}
	if !key.expiresAt.IsZero() && !k.clock.Now().Before(key.expiresAt) {
		return nil, false
	}
	return key.public, true
}

// SigningKeyID returns the kid of the key that Sign uses, or "" when no
// key can sign.
func (k *Keyring) SigningKeyID() string {
	signer := k.set.Load().signer
	if signer == nil {
		return ""
	}
	return signer.kid
}

// JWKS returns the JSON Web Key Set of every key that still verifies, in
// the shape {"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":…,"n":…,"e":…}]},
// newest key first. The bytes are cached and shared: callers must not
// modify them.
func (k *Keyring) JWKS() []byte {
	set := k.set.Load()
	if set.jwksExpiresAt.IsZero() {
		return set.jwks
	}

	now := k.clock.Now()
	if now.Before(set.jwksExpiresAt) {
		return set.jwks
	}
	return k.dropExpired(set, now).jwks
}

// dropExpired replaces set with one without the keys expired at now,
// unless another goroutine has replaced it already.
func (k *Keyring) dropExpired(set *keySet, now time.Time) *keySet {
	// buildSet parses only rows that parsed before, and opens a private key
	// only when the signer retired since, so this fails only when that key
	// does not open with the master key. The old set then stays in use.
	rebuilt, err := k.buildSet(set.rows, now, set)
	if err != nil {
		k.logger.Error("drop expired signing keys", "error", err)
		return set
	}

	if !k.set.CompareAndSwap(set, rebuilt) {
		return k.set.Load()
	}
	return rebuilt
}
