package password

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// testParams uses the smallest memory cost that Validate allows, so the
// tests run fast.
func testParams() Params {
	return Params{MemoryKiB: minMemoryKiB, Iterations: 1, Parallelism: 1, SaltBytes: 16, KeyBytes: 32}
}

func mustHash(t *testing.T, password string, p Params) string {
	t.Helper()
	encoded, err := Hash(password, p)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return encoded
}

func TestDefaultParamsValid(t *testing.T) {
	p := DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
	want := Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1, SaltBytes: 16, KeyBytes: 32}
	if p != want {
		t.Errorf("DefaultParams() = %+v, want %+v", p, want)
	}
}

func TestHashFormat(t *testing.T) {
	encoded := mustHash(t, "correct horse battery staple", DefaultParams())

	pattern := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !pattern.MatchString(encoded) {
		t.Errorf("Hash = %q, want a match for %s", encoded, pattern)
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	first := mustHash(t, "correct horse battery staple", testParams())
	second := mustHash(t, "correct horse battery staple", testParams())
	if first == second {
		t.Errorf("two hashes of one password are equal: %q", first)
	}
}

func TestHashInvalidParams(t *testing.T) {
	p := testParams()
	p.Parallelism = 0
	if _, err := Hash("correct horse battery staple", p); err == nil {
		t.Error("Hash with parallelism 0: got nil error")
	}
}

func TestVerifyRoundTrip(t *testing.T) {
	for _, password := range []string{"correct horse battery staple", "", "pässwörd ✓ 密码", strings.Repeat("x", 4096)} {
		encoded := mustHash(t, password, testParams())
		ok, err := Verify(password, encoded)
		if err != nil {
			t.Errorf("Verify(%.20q): %v", password, err)
		}
		if !ok {
			t.Errorf("Verify(%.20q) = false, want true", password)
		}
	}
}

func TestVerifyReferenceVector(t *testing.T) {
	// Made by the Argon2 reference implementation's CLI (Debian package
	// argon2 0~20171227): echo -n "correct horse battery staple" |
	// argon2 saltsaltsaltsalt -id -m 13 -t 2 -p 1 -l 32
	const encoded = "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$22edPBk7pYgj5uTTpt6Uzw1Wkt9zIcHGXpLLdzYKToc"

	ok, err := Verify("correct horse battery staple", encoded)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !ok {
		t.Error("Verify of the reference vector = false, want true")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	encoded := mustHash(t, "correct horse battery staple", testParams())

	for _, wrong := range []string{"correct horse battery stapl", "Correct horse battery staple", ""} {
		ok, err := Verify(wrong, encoded)
		if err != nil {
			t.Errorf("Verify(%q): %v, want nil error", wrong, err)
		}
		if ok {
			t.Errorf("Verify(%q) = true, want false", wrong)
		}
	}
}

func TestVerifyTamperedHash(t *testing.T) {
	encoded := mustHash(t, "correct horse battery staple", testParams())
	fields := strings.Split(encoded, "$")

	// Change one character of the key and, separately, of the salt. Both
	// stay well-formed base64 of the same length.
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	tamperedKey := strings.Join(append(append([]string{}, fields[:5]...), flip(fields[5])), "$")
	tamperedSalt := strings.Join([]string{fields[0], fields[1], fields[2], fields[3], flip(fields[4]), fields[5]}, "$")
	tamperedCost := strings.Replace(encoded, "t=1", "t=2", 1)

	for name, tampered := range map[string]string{"key": tamperedKey, "salt": tamperedSalt, "cost": tamperedCost} {
		ok, err := Verify("correct horse battery staple", tampered)
		if err != nil {
			t.Errorf("%s: Verify: %v, want nil error", name, err)
		}
		if ok {
			t.Errorf("%s: Verify = true, want false", name)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	const salt = "c2FsdHNhbHRzYWx0c2FsdA" // 16 bytes
	const key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"no leading dollar", "argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key},
		{"missing key", "$argon2id$v=19$m=8192,t=1,p=1$" + salt},
		{"extra field", "$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$" + key + "$x"},
		{"argon2i", "$argon2i$v=19$m=8192,t=1,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"},
		{"version 16", "$argon2id$v=16$m=8192,t=1,p=1$" + salt + "$" + key},
		{"version missing", "$argon2id$m=8192,t=1,p=1$" + salt + "$" + key + "$" + key},
		{"params reordered", "$argon2id$v=19$t=1,m=8192,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=8192,t=1$" + salt + "$" + key},
		{"param not a number", "$argon2id$v=19$m=lots,t=1,p=1$" + salt + "$" + key},
		{"param signed", "$argon2id$v=19$m=+8192,t=1,p=1$" + salt + "$" + key},
		{"param leading zero", "$argon2id$v=19$m=08192,t=1,p=1$" + salt + "$" + key},
		{"param empty", "$argon2id$v=19$m=,t=1,p=1$" + salt + "$" + key},
		{"parallelism overflows uint8", "$argon2id$v=19$m=8192,t=1,p=256$" + salt + "$" + key},
		{"memory below bound", "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key},
		{"memory above bound", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"iterations above bound", "$argon2id$v=19$m=8192,t=1000,p=1$" + salt + "$" + key},
		{"parallelism zero", "$argon2id$v=19$m=8192,t=1,p=0$" + salt + "$" + key},
		{"salt short", "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$" + key},
		{"salt not base64", "$argon2id$v=19$m=8192,t=1,p=1$!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=8192,t=1,p=1$" + salt + "==$" + key},
		{"key short", "$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$a2V5"},
		{"key empty", "$argon2id$v=19$m=8192,t=1,p=1$" + salt + "$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify("correct horse battery staple", tt.encoded)
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify error = %v, want ErrMalformedHash", err)
			}
			if ok {
				t.Error("Verify = true, want false")
			}
		})
	}
}

func TestVerifyWellFormedFixture(t *testing.T) {
	// The fixture that TestVerifyMalformed varies must itself parse.
	encoded := "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	if _, err := Verify("correct horse battery staple", encoded); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	base := testParams()
	encoded := mustHash(t, "correct horse battery staple", base)

	if NeedsRehash(encoded, base) {
		t.Error("NeedsRehash with the same params = true, want false")
	}

	tests := []struct {
		name   string
		change func(*Params)
	}{
		{"memory", func(p *Params) { p.MemoryKiB++ }},
		{"iterations", func(p *Params) { p.Iterations++ }},
		{"parallelism", func(p *Params) { p.Parallelism++ }},
		{"salt", func(p *Params) { p.SaltBytes++ }},
		{"key", func(p *Params) { p.KeyBytes++ }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := base
			tt.change(&changed)
			if !NeedsRehash(encoded, changed) {
				t.Errorf("NeedsRehash after changing %s = false, want true", tt.name)
			}
		})
	}

	if !NeedsRehash("not a hash", base) {
		t.Error("NeedsRehash of a malformed hash = false, want true")
	}
}

func TestDummyVerify(t *testing.T) {
	// DummyVerify has no result; this checks that it runs with valid and
	// invalid params without panicking.
	DummyVerify("correct horse battery staple", testParams())
	DummyVerify("correct horse battery staple", Params{})
}

func TestValidateBounds(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Params)
	}{
		{"memory low", func(p *Params) { p.MemoryKiB = minMemoryKiB - 1 }},
		{"memory high", func(p *Params) { p.MemoryKiB = maxMemoryKiB + 1 }},
		{"iterations zero", func(p *Params) { p.Iterations = 0 }},
		{"iterations high", func(p *Params) { p.Iterations = maxIterations + 1 }},
		{"parallelism zero", func(p *Params) { p.Parallelism = 0 }},
		{"parallelism high", func(p *Params) { p.Parallelism = maxParallelism + 1 }},
		{"salt short", func(p *Params) { p.SaltBytes = minSaltBytes - 1 }},
		{"key short", func(p *Params) { p.KeyBytes = minKeyBytes - 1 }},
		{"key long", func(p *Params) { p.KeyBytes = maxKeyBytes + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.change(&p)
			if err := p.Validate(); err == nil {
				t.Errorf("Validate(%+v) = nil, want an error", p)
			}
		})
	}

	edges := Params{MemoryKiB: maxMemoryKiB, Iterations: maxIterations, Parallelism: maxParallelism, SaltBytes: minSaltBytes, KeyBytes: maxKeyBytes}
	if err := edges.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", edges, err)
	}
}

// BenchmarkHashDefault measures one Hash with DefaultParams. Its ns/op bounds
// the password logins one core can verify per second.
func BenchmarkHashDefault(b *testing.B) {
	p := DefaultParams()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", p); err != nil {
			b.Fatal(err)
		}
	}
}
