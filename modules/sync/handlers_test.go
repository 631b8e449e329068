package sync

import (
	"strings"
	"testing"
)

func TestParseETag(t *testing.T) {
	cases := []struct {
		value string
		want  int64
		ok    bool
	}{
		{`"3"`, 3, true},
		{`3`, 3, true},
		{`"12345678901"`, 12345678901, true},
		{`"0"`, 0, false},
		{`"-1"`, 0, false},
		{`"+1"`, 0, false},
		{`*`, 0, false},
		{`W/"3"`, 0, false},
		{`"3", "4"`, 0, false},
		{`""`, 0, false},
		{`"3`, 0, false},
	}
	for _, c := range cases {
		got, ok := parseETag(c.value)
		if got != c.want || ok != c.ok {
			t.Errorf("parseETag(%q) = %d, %v, want %d, %v", c.value, got, ok, c.want, c.ok)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []int64{0, 1, 500, 1 << 40} {
		got, err := decodeCursor(encodeCursor(seq))
		if err != nil || got != seq {
			t.Errorf("decodeCursor(encodeCursor(%d)) = %d, %v", seq, got, err)
		}
	}
	if got, err := decodeCursor(""); got != 0 || err != nil {
		t.Errorf("decodeCursor(\"\") = %d, %v, want the start", got, err)
	}
	for _, bad := range []string{"abc", "AQAAAAAAAAAA=", "AgAAAAAAAAAB", "AQAAAAAAAAAAAA", "Af__________"} {
		if _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted a cursor this API never returns", bad)
		}
	}
}

func TestValidNames(t *testing.T) {
	for _, name := range []string{"notes", "a", "settings_v2", "my-app", strings.Repeat("x", 64)} {
		if err := validCollection(name); err != nil {
			t.Errorf("validCollection(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "Notes", "a/b", "..", "a.b", "a b", strings.Repeat("x", 65)} {
		if validCollection(name) == nil {
			t.Errorf("validCollection(%q) accepted it", name)
		}
	}
	for _, id := range []string{"x", "a/b", "..", " spaced ", "~!@#$%^&*()", strings.Repeat("i", 128)} {
		if err := validID("id", id); err != nil {
			t.Errorf("validID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "tab\there", "\x7f", "é", strings.Repeat("i", 129)} {
		if validID("id", id) == nil {
			t.Errorf("validID(%q) accepted it", id)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	value := func(s string) *string { return &s }
	if got, err := decodeBase64("payload", value("YWJj")); err != nil || string(got) != "abc" {
		t.Errorf("decodeBase64(YWJj) = %q, %v", got, err)
	}
	for _, bad := range []*string{nil, value(""), value("YWJjZA"), value("YWJj\nZGVm"), value("YW Jj"), value("YWJj_-=="), value("!!!!")} {
		if _, err := decodeBase64("payload", bad); err == nil {
			t.Errorf("decodeBase64(%v) accepted it", bad)
		}
	}
}

func TestPreconditionMatches(t *testing.T) {
	live := &item{Version: 2}
	tombstone := &item{Version: 3, Deleted: true}
	cases := []struct {
		name    string
		match   precondition
		current *item
		want    bool
	}{
		{"create new", precondition{IfNoneMatch: true}, nil, true},
		{"create over a tombstone", precondition{IfNoneMatch: true}, tombstone, true},
		{"create over a live item", precondition{IfNoneMatch: true}, live, false},
		{"current version", precondition{Version: 2}, live, true},
		{"older version", precondition{Version: 1}, live, false},
		{"tombstone's version", precondition{Version: 3}, tombstone, true},
		{"base before the tombstone", precondition{Version: 2}, tombstone, false},
		{"version of a missing item", precondition{Version: 1}, nil, false},
	}
	for _, c := range cases {
		if got := c.match.matches(c.current); got != c.want {
			t.Errorf("%s: matches = %v, want %v", c.name, got, c.want)
		}
	}
}
