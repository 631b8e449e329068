package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrOpen is returned by Open when a sealed value fails authentication: it
// was sealed with another master key or other additional data, or it was
// altered.
var ErrOpen = errors.New("sealed value failed authentication")

// Seal encrypts plaintext with AES-256-GCM under masterKey and a random
// 96-bit nonce. The additional data is authenticated but not stored, so
// Open needs the same value. Pass the identity of the row that stores the
// result (such as a kid) so a sealed value cannot be moved to another row.
// The result is the nonce followed by the ciphertext and the tag.
func Seal(masterKey, plaintext, additionalData []byte) ([]byte, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}

	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, additionalData), nil
}

// Open decrypts a value from Seal. It returns an error wrapping ErrOpen when
// masterKey or additionalData differ from the ones used to seal, or when
// sealed was altered.
func Open(masterKey, sealed, additionalData []byte) ([]byte, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}

	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a nonce and a tag", ErrOpen, len(sealed))
	}
	nonce, ciphertext := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]

	plaintext, err := aead.Open(nil, nonce, ciphertext, additionalData)
	if err != nil {
		return nil, fmt.Errorf("%w: wrong master key, wrong additional data or altered ciphertext", ErrOpen)
	}
	return plaintext, nil
}

func newAEAD(masterKey []byte) (cipher.AEAD, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, expected %d", len(masterKey), MasterKeySize)
	}

	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("create AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create GCM: %w", err)
	}
	return aead, nil
}
