package keyring_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nexus-suite/nexus/runtime/keyring"
)

func TestSealOpen(t *testing.T) {
	masterKey := bytes.Repeat([]byte{1}, keyring.MasterKeySize)
	plaintext := []byte("private key bytes")

	sealed, err := keyring.Seal(masterKey, plaintext, []byte("kid-1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(sealed, plaintext) {
		t.Error("sealed value contains the plaintext")
	}
	again, err := keyring.Seal(masterKey, plaintext, []byte("kid-1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one plaintext are equal; the nonce is not random")
	}

	opened, err := keyring.Open(masterKey, sealed, []byte("kid-1"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(opened, plaintext) {
		t.Errorf("Open = %q, expected %q", opened, plaintext)
	}
}

func TestOpenRejects(t *testing.T) {
	masterKey := bytes.Repeat([]byte{1}, keyring.MasterKeySize)
	sealed, err := keyring.Seal(masterKey, []byte("private key bytes"), []byte("kid-1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 0x80

	tests := []struct {
		name           string
		masterKey      []byte
		sealed         []byte
		additionalData string
	}{
		{"WrongMasterKey", bytes.Repeat([]byte{2}, keyring.MasterKeySize), sealed, "kid-1"},
		{"WrongAdditionalData", masterKey, sealed, "kid-2"},
		{"Tampered", masterKey, tampered, "kid-1"},
		{"Truncated", masterKey, sealed[:20], "kid-1"},
		{"Empty", masterKey, nil, "kid-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyring.Open(tt.masterKey, tt.sealed, []byte(tt.additionalData))
			if !errors.Is(err, keyring.ErrOpen) {
				t.Errorf("Open returned %v, expected ErrOpen", err)
			}
		})
	}
}

func TestSealShortMasterKey(t *testing.T) {
	if _, err := keyring.Seal(make([]byte, 16), []byte("x"), nil); err == nil {
		t.Error("Seal accepted a 16-byte master key")
	}
}
