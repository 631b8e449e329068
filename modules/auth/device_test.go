package auth

import (
	"strings"
	"testing"
)

func TestNormalizeUserCode(t *testing.T) {
	valid := map[string]string{
		"BCDF-GHJK":       "BCDFGHJK",
		"bcdf-ghjk":       "BCDFGHJK",
		" bcdf ghjk ":     "BCDFGHJK",
		"BCDFGHJK":        "BCDFGHJK",
		"b-c-d-f-g-h-j-k": "BCDFGHJK",
	}
	for input, want := range valid {
		got, ok := normalizeUserCode(input)
		if !ok || got != want {
			t.Errorf("normalizeUserCode(%q) = %q, %v; want %q", input, got, ok, want)
		}
	}

	for _, input := range []string{"", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK", "ВCDF-GHJK"} {
		if got, ok := normalizeUserCode(input); ok {
			t.Errorf("normalizeUserCode(%q) = %q, want rejection", input, got)
		}
	}
}

func TestNewUserCodeUsesWholeAlphabet(t *testing.T) {
	seen := map[rune]int{}
	for range 2000 {
		code, err := newUserCode()
		if err != nil {
			t.Fatalf("newUserCode: %v", err)
		}
		if len(code) != userCodeLength {
			t.Fatalf("code %q has %d letters, want %d", code, len(code), userCodeLength)
		}
		for _, c := range code {
			if !strings.ContainsRune(userCodeAlphabet, c) {
				t.Fatalf("code %q has %q, outside the alphabet", code, c)
			}
			seen[c]++
		}
	}
	// 16,000 letters over 20 give 800 each on average. A letter drawn
	// under 600 times means a biased draw, because by chance it is
	// more than 7 standard deviations away.
	for _, c := range userCodeAlphabet {
		if seen[c] < 600 {
			t.Errorf("letter %q drawn %d times in 16,000, want about 800", c, seen[c])
		}
	}
}

func TestFormatUserCode(t *testing.T) {
	if got := formatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("formatUserCode = %q, want BCDF-GHJK", got)
	}
}
