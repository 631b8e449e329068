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
// Ensure has not run, the signing key has retired, or the only keys left
// have not activated yet.
var ErrNoSigningKey = errors.New("no signing key loaded (run Ensure or Reload)")

// Keyring holds the token signing keys of the signing_keys table: the ones
// that sign new tokens now or will after their activation, and every key
// that still verifies tokens. At any time the signing key is the newest key
// that has activated and has not retired. Sign picks it with the clock on
// each call, so a keyring switches to a key it has loaded at the key's
// activation without a Reload. All methods are safe for concurrent use, and
// Sign, VerificationKey and JWKS take no lock.
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
	byKID map[string]*verificationKey
	// signers contains the keys that sign at the set's build time or after
	// it, newest first, with their private keys opened.
	signers []*signingKey
	jwks    []byte
	// jwksExpiresAt is the earliest expiry among the keys in jwks, or zero.
	// At that time JWKS rebuilds the set without the expired keys.
	jwksExpiresAt time.Time
}

type verificationKey struct {
	public    *rsa.PublicKey
	expiresAt time.Time
}

type signingKey struct {
	kid     string
	private *rsa.PrivateKey
	row     keyRow
}

// signerAt returns the key that signs at now, or nil when none does.
func (s *keySet) signerAt(now time.Time) *signingKey {
	for _, signer := range s.signers {
		if signer.row.canSign(now) {
			return signer
		}
	}
	return nil
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
	now := k.clock.Now()
	if k.set.Load().signerAt(now) != nil {
		return nil
	}

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

	signer := k.set.Load().signerAt(now)
	if signer == nil {
		// Rotate never leaves keys waiting for their activation with none
		// that signs now, so only rows edited by hand get here.
		return fmt.Errorf("ensure signing key: %w", ErrNoSigningKey)
	}
	if inserted {
		k.logger.Info("created signing key", "kid", row.kid)
	} else {
		k.logger.Info("loaded signing key created by another process", "kid", signer.kid)
	}
	return nil
}

// Rotate adds a new key that is in the JWKS and verifies at once, and signs
// from now + leadTime. The lead time lets clients and other nodes fetch the
// new key before they see a token it signed, so it should exceed the
// interval at which servers reload keys plus the time clients cache the
// JWKS. When no key signs at now, the new key signs at once. Every key that
// may still sign retires when the new key activates and keeps verifying for
// overlap after that. The overlap should be the access-token TTL plus the
// verifier's leeway, and a zero overlap rejects the tokens those keys signed
// from the activation on. It returns the new key's kid, and ActivatesAt
// returns when that key starts signing.
func (k *Keyring) Rotate(ctx context.Context, leadTime, overlap time.Duration) (kid string, err error) {
	if leadTime < 0 {
		return "", fmt.Errorf("rotate signing key: lead time %v is negative", leadTime)
	}
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
	activatesAt, retired, err := rotateKeys(ctx, k.db, row, now, leadTime, overlap)
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if err := k.reloadLocked(ctx); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}

	k.logger.Info("rotated signing key", "kid", row.kid, "activates_at", activatesAt,
		"retired_keys", retired, "lead_time", leadTime, "overlap", overlap)
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
// private keys that previous has already opened.
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

		// Rows come newest first, and so do the signers. A key that has not
		// activated is opened now, so that a key that does not open with the
		// master key fails the load before its activation.
		if row.mayStillSign(now) {
			signer, err := k.openSigner(row, previous)
			if err != nil {
				return nil, err
			}
			set.signers = append(set.signers, signer)
		}
	}

	set.jwks = buildJWKS(set.rows, now)
	return set, nil
}

func (k *Keyring) openSigner(row keyRow, previous *keySet) (*signingKey, error) {
	if previous != nil {
		for _, signer := range previous.signers {
			if signer.kid == row.kid {
				return &signingKey{kid: row.kid, private: signer.private, row: row}, nil
			}
		}
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
	return &signingKey{kid: row.kid, private: private, row: row}, nil
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
// verifies tokens, which includes a key that has not activated yet. It
// takes no lock.
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

// SigningKeyID returns the kid of the key that Sign uses at the clock's
// current time, or "" when no key can sign.
func (k *Keyring) SigningKeyID() string {
	signer := k.set.Load().signerAt(k.clock.Now())
	if signer == nil {
		return ""
	}
	return signer.kid
}

// ActivatesAt returns when the loaded key with the given kid starts
// signing, or false when that key is not loaded or will not sign again.
// The time may be in the past.
func (k *Keyring) ActivatesAt(kid string) (time.Time, bool) {
	now := k.clock.Now()
	for _, signer := range k.set.Load().signers {
		if signer.kid == kid && signer.row.mayStillSign(now) {
			return signer.row.activeFrom(), true
		}
	}
	return time.Time{}, false
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
	// buildSet parses only rows that parsed before, and a key that may
	// still sign at now could at set's build time too, so its private key
	// is reused and nothing is opened. Should it fail all the same, the old
	// set stays in use.
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
