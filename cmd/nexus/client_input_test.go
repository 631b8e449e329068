package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientCommandsRejectBadInput runs the client commands with input
// they must reject before contacting a server, so no server runs.
func TestClientCommandsRejectBadInput(t *testing.T) {
	dir := t.TempDir()
	emptySkill := filepath.Join(dir, "no-manifest")
	if err := os.MkdirAll(emptySkill, 0o755); err != nil {
		t.Fatal(err)
	}
	textFile := filepath.Join(dir, "skill.txt")
	if err := os.WriteFile(textFile, []byte("not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"NEXUS_CREDENTIALS=" + filepath.Join(dir, "credentials.json"), "NEXUS_SERVER=http://127.0.0.1:1"}

	cases := []struct {
		name     string
		args     []string
		want     string
		mustSkip string
	}{
		{"config not an object", []string{"mcp", "servers", "create", "--plugin", "notes", "--name", "n", "--config", "[1]"}, "invalid --config", ""},
		{"secret without value", []string{"mcp", "servers", "create", "--plugin", "notes", "--name", "n", "--secret", "hunter2-secret"}, "invalid --secret number 1", "hunter2-secret"},
		{"skill without SKILL.md", []string{"skills", "publish", emptySkill}, "no SKILL.md", ""},
		{"skill of another file type", []string{"skills", "publish", textFile}, "a .zip or a .tar.gz", ""},
		{"sync before login", []string{"sync", "push", dir}, "not signed in", ""},
		{"sync without a folder", []string{"sync", "pull"}, "accepts 1 arg", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			output, code := runNexusWith(t, dir, env, tc.args...)
			if code != 1 {
				t.Errorf("exit code = %d, want 1 (%s)", code, output)
			}
			if !strings.Contains(output, tc.want) {
				t.Errorf("output %q lacks %q", output, tc.want)
			}
			if tc.mustSkip != "" && strings.Contains(output, tc.mustSkip) {
				t.Errorf("output %q shows %q", output, tc.mustSkip)
			}
		})
	}
}
