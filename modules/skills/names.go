package skills

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// maxNameLength is the longest skill name, in characters of [a-z0-9-].
const maxNameLength = 64

// checkName reports why name is not a valid skill name: 1 to 64 characters
// of [a-z0-9-], without a leading, trailing or doubled hyphen. It returns
// nil for a valid name.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty, expected 1 to %d characters of a-z, 0-9 and -", maxNameLength)
	case len(name) > maxNameLength:
		return fmt.Errorf("name has %d bytes, the maximum is %d", len(name), maxNameLength)
	}
	for i, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("name %q has the character %q at byte %d, allowed are a-z, 0-9 and -", name, r, i)
		}
	}
	switch {
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return fmt.Errorf("name %q starts or ends with a hyphen", name)
	case strings.Contains(name, "--"):
		return fmt.Errorf("name %q has two hyphens in a row", name)
	}
	return nil
}

// lookalikes maps Cyrillic and Greek letters to the Latin letter they are
// mistaken for. Upper and lower case are listed apart because some pairs
// look like different Latin letters, such as Greek Η (H) and η (n).
var lookalikes = map[rune]rune{
	// Cyrillic.
	'а': 'a', 'А': 'a', 'в': 'b', 'В': 'b', 'с': 'c', 'С': 'c', 'ԁ': 'd',
	'е': 'e', 'Е': 'e', 'ё': 'e', 'Ё': 'e', 'һ': 'h', 'Һ': 'h', 'н': 'h', 'Н': 'h',
	'і': 'i', 'І': 'i', 'ї': 'i', 'Ї': 'i', 'ј': 'j', 'Ј': 'j', 'к': 'k', 'К': 'k',
	'ӏ': 'l', 'Ӏ': 'l', 'м': 'm', 'М': 'm', 'о': 'o', 'О': 'o', 'р': 'p', 'Р': 'p',
	'ԛ': 'q', 'Ԛ': 'q', 'ѕ': 's', 'Ѕ': 's', 'т': 't', 'Т': 't', 'у': 'y', 'У': 'y',
	'ԝ': 'w', 'Ԝ': 'w', 'х': 'x', 'Х': 'x', 'ь': 'b', 'п': 'n',
	// Greek.
	'α': 'a', 'Α': 'a', 'β': 'b', 'Β': 'b', 'ϲ': 'c', 'Ϲ': 'c', 'ε': 'e', 'Ε': 'e',
	'η': 'n', 'Η': 'h', 'ι': 'i', 'Ι': 'i', 'ϳ': 'j', 'Ϳ': 'j', 'κ': 'k', 'Κ': 'k',
	'Μ': 'm', 'μ': 'u', 'ν': 'v', 'Ν': 'n', 'ο': 'o', 'Ο': 'o', 'ρ': 'p', 'Ρ': 'p', 'τ': 't',
	'Τ': 't', 'υ': 'u', 'Υ': 'y', 'χ': 'x', 'Χ': 'x', 'γ': 'y', 'Ζ': 'z', 'ω': 'w',
}

// foldName returns the key under which names count as the same: the
// NFKC form of name (which turns full-width letters into ASCII), with
// Cyrillic and Greek look-alikes mapped to Latin letters, case folded, and
// '-', '_' and '.' removed. "my-skill", "MySkill", "my_skill" and "mу-skill"
// with a Cyrillic у all fold to "myskill".
func foldName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range norm.NFKC.String(name) {
		if latin, ok := lookalikes[r]; ok {
			r = latin
		}
		switch r {
		case '-', '_', '.':
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
