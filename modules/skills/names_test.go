package skills

import "testing"

func TestCheckName(t *testing.T) {
	valid := []string{"a", "my-skill", "pdf-tools-2", "0", "a-b-c", "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01"}
	for _, name := range valid {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
		}
	}

	invalid := map[string]string{
		"empty":           "",
		"leading hyphen":  "-skill",
		"trailing hyphen": "skill-",
		"double hyphen":   "my--skill",
		"upper case":      "MySkill",
		"underscore":      "my_skill",
		"dot":             "my.skill",
		"space":           "my skill",
		"cyrillic":        "mу-skill",
		"65 characters":   "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012",
	}
	for label, name := range invalid {
		if err := checkName(name); err == nil {
			t.Errorf("checkName of %s (%q) = nil, want an error", label, name)
		}
	}
}

func TestFoldName(t *testing.T) {
	cases := map[string]string{
		"my-skill":        "myskill",
		"myskill":         "myskill",
		"My_Skill":        "myskill",
		"my.skill":        "myskill",
		"m-y-s-k-i-l-l":   "myskill",
		"mу-skill":        "myskill", // Cyrillic у
		"МY-SKILL":        "myskill", // Cyrillic М
		"my-skіll":        "myskill", // Cyrillic і
		"ѕkill":           "skill",   // Cyrillic ѕ
		"αpha":            "apha",    // Greek α
		"ΤΟΚΕΝ":           "token",   // Greek capitals
		"ｍｙ－ｓｋｉｌｌ":        "myskill", // full-width forms
		"resume-writer-2": "resumewriter2",
	}
	for name, want := range cases {
		if got := foldName(name); got != want {
			t.Errorf("foldName(%q) = %q, want %q", name, got, want)
		}
	}

	if foldName("my-skill") == foldName("my-skills") {
		t.Error("my-skill and my-skills fold to the same key")
	}
}
