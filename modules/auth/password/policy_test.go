package password

import (
	"errors"
	"strings"
	"testing"
)

func TestCommonListSize(t *testing.T) {
	if n := len(loadCommonPasswords()); n < 10000 {
		t.Errorf("common password list has %d entries, want at least 10000", n)
	}
}

func TestCommonListHasFixture(t *testing.T) {
	// TestCheck relies on these entries of 12 or more characters.
	for _, entry := range []string{"password1234", "counterstrike"} {
		if !isCommon(entry) {
			t.Errorf("%q is not in the common password list", entry)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		password string
		reason   string // empty when the password is accepted
	}{
		{"11 chars", strings.Repeat("a", 11), ReasonTooShort},
		{"12 chars", "qz7-vintage-", ""},
		{"1024 chars", strings.Repeat("a", 1024), ""},
		{"1025 chars", strings.Repeat("a", 1025), ReasonTooLong},
		{"empty", "", ReasonTooShort},
		{"common", "password1234", ReasonCommon},
		{"common upper", "PASSWORD1234", ReasonCommon},
		{"common mixed case", "PassWord1234", ReasonCommon},
		{"common kelvin sign", "counterstri\u212Ae", ReasonCommon},
		{"common long s", "pa\u017Fsword1234", ReasonCommon},
		{"common with suffix", "password1234!", ""},
		{"invalid utf8", "abcdefghijk\xff", ReasonInvalidUTF8},
		{"invalid utf8 long", strings.Repeat("a", 20) + "\xc3", ReasonInvalidUTF8},
		{"12 multibyte", strings.Repeat("密", 12), ""},
		{"11 multibyte", strings.Repeat("密", 11), ReasonTooShort},
		{"1024 emoji", strings.Repeat("🔑", 1024), ""},
		{"1025 emoji", strings.Repeat("🔑", 1025), ReasonTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.password)
			if tt.reason == "" {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}

			var policyErr *PolicyError
			if !errors.As(err, &policyErr) {
				t.Fatalf("Check = %v, want a *PolicyError", err)
			}
			if policyErr.Reason != tt.reason {
				t.Errorf("Reason = %q, want %q", policyErr.Reason, tt.reason)
			}
			if policyErr.MinLength != MinLength {
				t.Errorf("MinLength = %d, want %d", policyErr.MinLength, MinLength)
			}
			if policyErr.MaxLength != MaxLength {
				t.Errorf("MaxLength = %d, want %d", policyErr.MaxLength, MaxLength)
			}
		})
	}
}

func TestPolicyErrorMessages(t *testing.T) {
	tests := []struct {
		reason string
		want   string
	}{
		{ReasonTooShort, "password must be at least 12 characters"},
		{ReasonTooLong, "password must be at most 1024 characters"},
		{ReasonCommon, "password is too common because it is on a list of commonly used passwords"},
		{ReasonInvalidUTF8, "password is not valid UTF-8"},
	}
	for _, tt := range tests {
		if got := policyError(tt.reason).Error(); got != tt.want {
			t.Errorf("Error() for %s = %q, want %q", tt.reason, got, tt.want)
		}
	}
}
