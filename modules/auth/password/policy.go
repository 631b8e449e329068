package password

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Length bounds of a new password, counted in Unicode code points (runes).
const (
	MinLength = 12
	MaxLength = 1024
)

// Reasons a PolicyError carries.
const (
	ReasonTooShort    = "too_short"
	ReasonTooLong     = "too_long"
	ReasonCommon      = "common"
	ReasonInvalidUTF8 = "invalid_utf8"
)

// PolicyError is the error Check returns for a password that breaks the
// policy. MinLength and MaxLength are the bounds in force, so that a caller
// can show them in its own message.
type PolicyError struct {
	// Reason is one of ReasonTooShort, ReasonTooLong, ReasonCommon and
	// ReasonInvalidUTF8.
	Reason    string
	MinLength int
	MaxLength int
}

// Error returns a message that can be shown to the user.
func (e *PolicyError) Error() string {
	switch e.Reason {
	case ReasonTooShort:
		return fmt.Sprintf("password must be at least %d characters", e.MinLength)
	case ReasonTooLong:
		return fmt.Sprintf("password must be at most %d characters", e.MaxLength)
	case ReasonCommon:
		return "password is too common because it is on a list of commonly used passwords"
	case ReasonInvalidUTF8:
		return "password is not valid UTF-8"
	default:
		return "password is rejected by the password policy: " + e.Reason
	}
}

// Check returns a *PolicyError when password is not valid UTF-8, has fewer
// than MinLength or more than MaxLength characters, or is on the built-in
// list of common passwords after simple Unicode case folding, so
// "PassWord1234" counts as "password1234". It returns nil otherwise.
func Check(password string) error {
	if !utf8.ValidString(password) {
		return policyError(ReasonInvalidUTF8)
	}

	length := utf8.RuneCountInString(password)
	if length < MinLength {
		return policyError(ReasonTooShort)
	}
	if length > MaxLength {
		return policyError(ReasonTooLong)
	}

	if isCommon(password) {
		return policyError(ReasonCommon)
	}
	return nil
}

func policyError(reason string) *PolicyError {
	return &PolicyError{Reason: reason, MinLength: MinLength, MaxLength: MaxLength}
}

// commonPasswordsText is the list of passwords that users pick most often,
// one per line, lower-cased and deduplicated. It is src/passwords.json of the
// npm package @zxcvbn-ts/language-common 4.1.3 (49,233 entries, MIT license
// in common-passwords-LICENSE.txt), converted from a JSON array to lines.
//
//go:embed common-passwords.txt
var commonPasswordsText string

var (
	commonPasswordsOnce sync.Once
	commonPasswords     map[string]struct{}
)

// loadCommonPasswords builds the lookup set on first use, so that a process
// that never checks a password does not hold it in memory.
func loadCommonPasswords() map[string]struct{} {
	commonPasswordsOnce.Do(func() {
		lines := strings.Split(commonPasswordsText, "\n")
		set := make(map[string]struct{}, len(lines))
		for _, line := range lines {
			if line == "" {
				continue
			}
			set[foldCase(line)] = struct{}{}
		}
		commonPasswords = set
	})
	return commonPasswords
}

func isCommon(password string) bool {
	_, found := loadCommonPasswords()[foldCase(password)]
	return found
}

// foldCase maps every rune to one representative of its simple case-folding
// orbit (the lower-case form of the orbit's smallest rune). Kelvin sign K and
// ASCII K therefore both become "k", and long s ſ becomes "s".
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		smallest := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			smallest = min(smallest, f)
		}
		return unicode.ToLower(smallest)
	}, s)
}
