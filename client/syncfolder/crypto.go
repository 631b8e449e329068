package syncfolder

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The envelope and payload formats. Changing either needs a new format
// name, because other devices must keep reading what was stored.
const (
	envelopeFormat = "nexus-sync-key/1"
	envelopeCipher = "xchacha20-poly1305"
	kdfName        = "argon2id"
	payloadMagic   = "NXS1"
	masterKeyBytes = 32
	saltBytes      = 16
)

// Argon2id costs of a new key envelope: RFC 9106's second recommended
// option (3 passes over 64 MiB with 4 lanes).
const (
	defaultArgonTime      = 3
	defaultArgonMemoryKiB = 64 * 1024
	defaultArgonThreads   = 4
)

// Upper bounds on the costs read from a stored envelope, so that a
// tampered envelope cannot make the client allocate without limit.
const (
	maxArgonTime      = 16
	maxArgonMemoryKiB = 1024 * 1024
)

// maxHeaderBytes bounds the sealed header of a payload.
const maxHeaderBytes = 64 << 10

// maxPathBytes bounds a file path inside a payload.
const maxPathBytes = 4096

// ErrWrongPassphrase is returned when a key envelope does not open with
// the passphrase.
var ErrWrongPassphrase = errors.New("the passphrase does not open the sync key; use the passphrase of the first push")

// KDFParams are the argon2id parameters of a key envelope.
type KDFParams struct {
	Name      string `json:"name"`
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// envelope is the record stored under /v1/sync/keys/{key_id}: the salt
// and costs that derive the key-encryption key from the passphrase, and
// the random master key sealed with it. It contains no plaintext key.
type envelope struct {
	Format     string    `json:"format"`
	KDF        KDFParams `json:"kdf"`
	Cipher     string    `json:"cipher"`
	Nonce      []byte    `json:"nonce"`
	WrappedKey []byte    `json:"wrapped_key"`
}

// Keys are the keys of one sync key envelope: one encrypts files, the
// other derives item ids from paths. Both come from the envelope's master
// key through HKDF-SHA256.
type Keys struct {
	seal  func(dst, nonce, plaintext, additionalData []byte) []byte
	open  func(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	idKey []byte
}

// NewEnvelope creates a random master key, wraps it with a key derived
// from passphrase with argon2id, and returns the encoded envelope for the
// server with the keys.
func NewEnvelope(keyID, passphrase string) ([]byte, *Keys, error) {
	if passphrase == "" {
		return nil, nil, errors.New("the sync passphrase is empty")
	}
	master := make([]byte, masterKeyBytes)
	salt := make([]byte, saltBytes)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	for _, b := range [][]byte{master, salt, nonce} {
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("read random bytes: %w", err)
		}
	}

	params := KDFParams{Name: kdfName, Salt: salt, Time: defaultArgonTime, MemoryKiB: defaultArgonMemoryKiB, Threads: defaultArgonThreads}
	wrapping, err := chacha20poly1305.NewX(deriveWrappingKey(passphrase, params))
	if err != nil {
		return nil, nil, err
	}
	env := envelope{
		Format: envelopeFormat, KDF: params, Cipher: envelopeCipher, Nonce: nonce,
		WrappedKey: wrapping.Seal(nil, nonce, master, envelopeAD(keyID)),
	}
	encoded, err := json.Marshal(env)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key envelope: %w", err)
	}
	keys, err := keysFromMaster(master)
	return encoded, keys, err
}

// OpenEnvelope derives the wrapping key from passphrase with the
// envelope's parameters and unwraps the master key. A wrong passphrase is
// ErrWrongPassphrase.
func OpenEnvelope(keyID string, encoded []byte, passphrase string) (*Keys, error) {
	var env envelope
	if err := json.Unmarshal(encoded, &env); err != nil {
		return nil, fmt.Errorf("decode sync key envelope %s: %w", keyID, err)
	}
	if err := env.check(); err != nil {
		return nil, fmt.Errorf("sync key envelope %s: %w", keyID, err)
	}

	wrapping, err := chacha20poly1305.NewX(deriveWrappingKey(passphrase, env.KDF))
	if err != nil {
		return nil, err
	}
	master, err := wrapping.Open(nil, env.Nonce, env.WrappedKey, envelopeAD(keyID))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return keysFromMaster(master)
}

// check rejects an envelope of another format or with costs out of bounds.
func (e envelope) check() error {
	switch {
	case e.Format != envelopeFormat:
		return fmt.Errorf("unknown format %q, want %s (update nexus)", e.Format, envelopeFormat)
	case e.Cipher != envelopeCipher || e.KDF.Name != kdfName:
		return fmt.Errorf("unknown cipher %q or KDF %q", e.Cipher, e.KDF.Name)
	case len(e.KDF.Salt) < saltBytes || len(e.Nonce) != chacha20poly1305.NonceSizeX:
		return errors.New("the salt or nonce has the wrong length")
	case e.KDF.Time < 1 || e.KDF.Time > maxArgonTime:
		return fmt.Errorf("argon2id time %d is outside 1 to %d", e.KDF.Time, maxArgonTime)
	case e.KDF.MemoryKiB < 8*uint32(max(e.KDF.Threads, 1)) || e.KDF.MemoryKiB > maxArgonMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB is outside %d to %d", e.KDF.MemoryKiB, 8*uint32(max(e.KDF.Threads, 1)), maxArgonMemoryKiB)
	case e.KDF.Threads < 1:
		return errors.New("argon2id threads is 0")
	}
	return nil
}

func deriveWrappingKey(passphrase string, p KDFParams) []byte {
	return argon2.IDKey([]byte(passphrase), p.Salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// envelopeAD binds a wrapped key to its key id, so an envelope copied to
// another id does not open.
func envelopeAD(keyID string) []byte { return []byte(envelopeFormat + "\x00" + keyID) }

func keysFromMaster(master []byte) (*Keys, error) {
	fileKey, err := hkdf.Key(sha256.New, master, nil, "nexus sync file encryption", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	idKey, err := hkdf.Key(sha256.New, master, nil, "nexus sync item ids", sha256.Size)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(fileKey)
	if err != nil {
		return nil, err
	}
	return &Keys{seal: aead.Seal, open: aead.Open, idKey: idKey}, nil
}

// ItemID returns the item id of a file path in a collection, the hex
// HMAC-SHA256 of both under the id key. The server never receives file
// names, and the same path maps to the same id on every device.
func (k *Keys) ItemID(collection, filePath string) string {
	mac := hmac.New(sha256.New, k.idKey)
	mac.Write([]byte(collection + "\x00" + filePath))
	return hex.EncodeToString(mac.Sum(nil))
}

// FileHeader is the sealed description of a file inside a payload.
type FileHeader struct {
	Path string `json:"path"`
	// Mode is 0o644 or 0o755.
	Mode uint32 `json:"mode"`
	Size int64  `json:"size"`
}

// Seal encrypts a file for the item id of its path. The payload is
//
//	"NXS1" | header nonce (24) | sealed header length (uint32, big endian) |
//	sealed header | body nonce (24) | sealed body
//
// with XChaCha20-Poly1305. The header's associated data is the collection
// and the item id, and the body's adds the file path. A payload moved to
// another item, collection or path therefore fails to open.
func (k *Keys) Seal(collection string, header FileHeader, content []byte) ([]byte, error) {
	id := k.ItemID(collection, header.Path)
	headerJSON, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode file header: %w", err)
	}
	headerNonce := make([]byte, chacha20poly1305.NonceSizeX)
	bodyNonce := make([]byte, chacha20poly1305.NonceSizeX)
	for _, b := range [][]byte{headerNonce, bodyNonce} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
	}

	sealedHeader := k.seal(nil, headerNonce, headerJSON, headerAD(collection, id))
	payload := make([]byte, 0, len(payloadMagic)+2*chacha20poly1305.NonceSizeX+4+len(sealedHeader)+len(content)+chacha20poly1305.Overhead)
	payload = append(payload, payloadMagic...)
	payload = append(payload, headerNonce...)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(sealedHeader)))
	payload = append(payload, sealedHeader...)
	payload = append(payload, bodyNonce...)
	return k.seal(payload, bodyNonce, content, bodyAD(collection, id, header.Path)), nil
}

// Open decrypts the payload of item id and checks that the path inside it
// is a safe relative path whose item id is id.
func (k *Keys) Open(collection, id string, payload []byte) (FileHeader, []byte, error) {
	fail := func(reason string) (FileHeader, []byte, error) {
		return FileHeader{}, nil, fmt.Errorf("sync item %s: %s", id, reason)
	}
	rest, ok := strings.CutPrefix(string(payload), payloadMagic)
	if !ok || len(rest) < chacha20poly1305.NonceSizeX+4 {
		return fail("not a nexus sync payload")
	}
	data := []byte(rest)
	headerNonce, data := data[:chacha20poly1305.NonceSizeX], data[chacha20poly1305.NonceSizeX:]
	headerLength := binary.BigEndian.Uint32(data)
	data = data[4:]
	if headerLength > maxHeaderBytes || int(headerLength) > len(data)-chacha20poly1305.NonceSizeX {
		return fail("the header length is out of range")
	}
	sealedHeader, data := data[:headerLength], data[headerLength:]
	bodyNonce, sealedBody := data[:chacha20poly1305.NonceSizeX], data[chacha20poly1305.NonceSizeX:]

	headerJSON, err := k.open(nil, headerNonce, sealedHeader, headerAD(collection, id))
	if err != nil {
		return fail("the header does not decrypt with this key (wrong key, or the payload was changed)")
	}
	var header FileHeader
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return fail("the header is not valid JSON")
	}
	if err := CheckPath(header.Path); err != nil {
		return fail(err.Error())
	}
	if k.ItemID(collection, header.Path) != id {
		return fail("the path inside does not belong to this item")
	}
	content, err := k.open(nil, bodyNonce, sealedBody, bodyAD(collection, id, header.Path))
	if err != nil {
		return fail("the content does not decrypt (the payload was changed)")
	}
	if int64(len(content)) != header.Size {
		return fail("the content size differs from the header's")
	}
	return header, content, nil
}

func headerAD(collection, id string) []byte {
	return []byte(payloadMagic + "\x00" + collection + "\x00" + id)
}

func bodyAD(collection, id, filePath string) []byte {
	return []byte(payloadMagic + "\x00" + collection + "\x00" + id + "\x00" + filePath)
}

// CheckPath accepts a relative, slash-separated file path inside the
// synced folder: no empty, "." or ".." segment, no leading slash, no
// backslash or NUL, at most 4,096 bytes, and not the state file.
func CheckPath(p string) error {
	switch {
	case p == "" || len(p) > maxPathBytes:
		return fmt.Errorf("invalid path %q: want 1 to %d bytes", p, maxPathBytes)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("invalid path %q: backslashes and NUL are not allowed", p)
	case path.IsAbs(p) || path.Clean(p) != p:
		return fmt.Errorf("invalid path %q: want a clean relative path", p)
	}
	for _, segment := range strings.Split(p, "/") {
		if segment == "." || segment == ".." || segment == "" {
			return fmt.Errorf("invalid path %q: no . or .. segments", p)
		}
	}
	if p == StateFile {
		return fmt.Errorf("invalid path %q: the state file is not synced", p)
	}
	return nil
}
