package host

import (
	"strings"
	"testing"
)

type recordedLines struct{ lines []string }

func (r *recordedLines) Write(data []byte) (int, error) {
	r.lines = append(r.lines, string(data))
	return len(data), nil
}

func TestOutputLines(t *testing.T) {
	recorded := &recordedLines{}
	output := newOutputLines(recorded)
	stderr := output.writer()
	stdout := output.writer()

	stderr.Write([]byte("first li"))
	stdout.Write([]byte("from stdout\n"))
	stderr.Write([]byte("ne\nsecond line\nthird"))
	stderr.Write([]byte(strings.Repeat("x", maxOutputLineBytes+10)))
	output.flush()

	want := []string{
		"from stdout\n",
		"first line\n",
		"second line\n",
		"third" + strings.Repeat("x", maxOutputLineBytes-5) + "\n",
		strings.Repeat("x", 15) + "\n",
	}
	if len(recorded.lines) != len(want) {
		t.Fatalf("got %d lines %q; want %d", len(recorded.lines), recorded.lines, len(want))
	}
	for i := range want {
		if recorded.lines[i] != want[i] {
			t.Errorf("line %d = %.40q (%d bytes); want %.40q (%d bytes)", i, recorded.lines[i], len(recorded.lines[i]), want[i], len(want[i]))
		}
	}
}

func TestPluginEnvOrder(t *testing.T) {
	t.Setenv("PATH", "/usr/bin")
	t.Setenv("NEXUS_DATABASE_URL", "postgres://secret")

	env := pluginEnv(
		[]string{"PATH=/opt/bin", "API_TOKEN=t", "NEXUS_MCP_PLUGIN=forged", "PLUGIN_MIN_PORT=1"},
		[]string{"NEXUS_MCP_PLUGIN=cookie", "PLUGIN_MIN_PORT=10000"},
	)
	joined := strings.Join(env, " ")

	for _, unwanted := range []string{"NEXUS_DATABASE_URL", "forged", "PLUGIN_MIN_PORT=1 "} {
		if strings.Contains(joined+" ", unwanted) {
			t.Errorf("environment %q contains %q", joined, unwanted)
		}
	}
	for _, wanted := range []string{"PATH=/usr/bin", "PATH=/opt/bin", "API_TOKEN=t", "NEXUS_MCP_PLUGIN=cookie", "NEXUS_PLUGIN_HOST_PID="} {
		if !strings.Contains(joined, wanted) {
			t.Errorf("environment %q lacks %q", joined, wanted)
		}
	}
	if strings.Index(joined, "PATH=/opt/bin") < strings.Index(joined, "PATH=/usr/bin") {
		t.Errorf("environment %q: Spec.Env must come after the host's PATH to override it", joined)
	}
}
