package syncfolder

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEnvelopeOpensWithPassphrase(t *testing.T) {
	encoded, keys, err := NewEnvelope("nexus-cli", "correct horse battery staple")
	if err != nil {
		t.Fatalf("new envelope: %v", err)
	}
	if bytes.Contains(encoded, []byte("correct horse")) {
		t.Fatal("the envelope contains the passphrase")
	}

	opened, err := OpenEnvelope("nexus-cli", encoded, "correct horse battery staple")
	if err != nil {
		t.Fatalf("open envelope: %v", err)
	}
	if opened.ItemID("files", "a.txt") != keys.ItemID("files", "a.txt") {
		t.Error("a second device derives other item ids")
	}

	if _, err := OpenEnvelope("nexus-cli", encoded, "wrong passphrase"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := OpenEnvelope("other-key", encoded, "correct horse battery staple"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("envelope under another key id: err = %v, want ErrWrongPassphrase", err)
	}
}

func TestEnvelopeRejectsExcessiveCosts(t *testing.T) {
	encoded, _, err := NewEnvelope("k", "passphrase")
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(encoded, &env); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e *envelope){
		"memory":  func(e *envelope) { e.KDF.MemoryKiB = maxArgonMemoryKiB + 1 },
		"time":    func(e *envelope) { e.KDF.Time = maxArgonTime + 1 },
		"threads": func(e *envelope) { e.KDF.Threads = 0 },
		"format":  func(e *envelope) { e.Format = "nexus-sync-key/9" },
		"salt":    func(e *envelope) { e.KDF.Salt = e.KDF.Salt[:4] },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			tampered := env
			change(&tampered)
			data, _ := json.Marshal(tampered)
			_, err := OpenEnvelope("k", data, "passphrase")
			if err == nil || errors.Is(err, ErrWrongPassphrase) {
				t.Errorf("err = %v, want a rejected envelope", err)
			}
		})
	}
}

func testKeys(t *testing.T) *Keys {
	t.Helper()
	keys, err := keysFromMaster(bytes.Repeat([]byte{7}, masterKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestSealOpenRoundTrip(t *testing.T) {
	keys := testKeys(t)
	content := []byte("the file's content")
	header := FileHeader{Path: "notes/today.md", Mode: 0o644, Size: int64(len(content))}

	payload, err := keys.Seal("files", header, content)
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	if bytes.Contains(payload, content) || bytes.Contains(payload, []byte("today.md")) {
		t.Fatal("the payload contains the content or the path in the clear")
	}

	id := keys.ItemID("files", header.Path)
	gotHeader, gotContent, err := keys.Open("files", id, payload)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if gotHeader != header || !bytes.Equal(gotContent, content) {
		t.Errorf("opened %+v %q, want %+v %q", gotHeader, gotContent, header, content)
	}
}

func TestOpenRejectsMovedOrChangedPayload(t *testing.T) {
	keys := testKeys(t)
	content := []byte("x")
	payload, err := keys.Seal("files", FileHeader{Path: "a.txt", Mode: 0o644, Size: 1}, content)
	if err != nil {
		t.Fatal(err)
	}
	id := keys.ItemID("files", "a.txt")

	if _, _, err := keys.Open("files", keys.ItemID("files", "b.txt"), payload); err == nil {
		t.Error("a payload moved to another item opened")
	}
	if _, _, err := keys.Open("other", id, payload); err == nil {
		t.Error("a payload moved to another collection opened")
	}
	flipped := bytes.Clone(payload)
	flipped[len(flipped)-1] ^= 1
	if _, _, err := keys.Open("files", id, flipped); err == nil {
		t.Error("a changed payload opened")
	}
	if _, _, err := keys.Open("files", id, payload[:10]); err == nil {
		t.Error("a truncated payload opened")
	}
	other, _ := keysFromMaster(bytes.Repeat([]byte{8}, masterKeyBytes))
	if _, _, err := other.Open("files", id, payload); err == nil {
		t.Error("a payload opened with another key")
	}
}

func TestOpenRejectsPathOutsideFolder(t *testing.T) {
	keys := testKeys(t)
	for _, bad := range []string{"../escape.txt", "/etc/passwd", "a/../../b", "a//b", `a\b`, StateFile} {
		// Seal does not check paths, as a hostile device with the key would not.
		payload, err := keys.Seal("files", FileHeader{Path: bad, Mode: 0o644, Size: 1}, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = keys.Open("files", keys.ItemID("files", bad), payload)
		if err == nil || !strings.Contains(err.Error(), "invalid path") {
			t.Errorf("path %q: err = %v, want an invalid path", bad, err)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, good := range []string{"a", "a/b.txt", ".hidden", "dir/.config/x", "ü/naïve.md"} {
		if err := CheckPath(good); err != nil {
			t.Errorf("CheckPath(%q) = %v, want nil", good, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "./a", "a/", "/a", "a/./b", "a\x00b", strings.Repeat("a", maxPathBytes+1)} {
		if err := CheckPath(bad); err == nil {
			t.Errorf("CheckPath(%q) accepted it", bad)
		}
	}
}
