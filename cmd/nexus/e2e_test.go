package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/nexus-suite/nexus/client"
	"github.com/nexus-suite/nexus/modules/auth/mail/mailtest"
	"github.com/nexus-suite/nexus/modules/billing/stripetest"
	"github.com/nexus-suite/nexus/plugins/plugintest"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// Secrets and prices of the journey's server config.
const (
	journeyWebhookSecret = "whsec_e2e_journey"
	journeyStudioPrice   = "price_e2e_studio_month"
	journeyPassphrase    = "a sync passphrase for the journey"
)

// journey is one user's way through the product against the real binary.
type journey struct {
	t        *testing.T
	dir      string
	server   string
	env      []string
	db       *sql.DB
	mail     *mailtest.Server
	email    string
	password string
	userID   string
	api      *client.Client
}

// TestJourneyEndToEnd runs the nexus binary as a server on PostgreSQL and
// Redis, with mail through mailpit and billing through stripe-mock. One
// user goes through the whole product with the CLI and the Go client. The
// steps are register, verify, device login, entitlements, trial, checkout,
// a signed webhook to Studio, a sync round trip with a conflict, a skill,
// and an MCP server with a tool call. After the account's deletion, no table of the
// schema may contain anything of the user.
func TestJourneyEndToEnd(t *testing.T) {
	j := startJourney(t)

	j.registerAndVerify()
	j.login()
	j.entitlementsAndTrial()
	j.checkoutToStudio()
	j.syncRoundTrip()
	j.skills()
	j.mcpServer()
	j.deleteAccount()
}

func startJourney(t *testing.T) *journey {
	t.Helper()
	databaseURL := storagetest.PostgresURL(t)
	redisURL := storagetest.Redis(t)
	mail := mailtest.Start(t)
	stripeMock := stripetest.Start(t)
	notes := plugintest.Build(t, plugintest.NotesPackage)

	dir := t.TempDir()
	configPath := filepath.Join(dir, "nexus.yaml")
	writeConfig(t, configPath, fmt.Sprintf(`
rate_limit:
  ip_per_minute: 100000
  ip_burst: 100000
tiers:
  catalog:
    studio:
      prices:
        month: %[1]s
modules:
  auth:
    device:
      interval: 1s
    mail:
      sender: smtp
      from: Nexus <no-reply@example.com>
      smtp:
        host: %[2]s
        port: %[3]d
        security: none
  billing:
    api_url: %[4]s
    secret_key: %[5]s
    webhook_secret: %[6]s
    reconcile_interval: 0s
  mcp:
    catalog:
      - name: notes
        path: %[7]s
        sha256: %[8]s
    stop_grace: 1s
`, journeyStudioPrice, mail.SMTPHost, mail.SMTPPort, stripeMock.URL, stripetest.SecretKey, journeyWebhookSecret,
		notes.Path, hex.EncodeToString(notes.SHA256)))

	p := startNexus(t, dir, []string{"--config", configPath},
		"NEXUS_DATABASE_URL="+databaseURL, "NEXUS_REDIS_URL="+redisURL, "NEXUS_REDIS_PREFIX="+storagetest.Prefix(t))
	server := "http://" + p.addr

	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatalf("open the test schema: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	api, err := client.New(client.Options{BaseURL: server})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	readiness, err := api.Ready(ctx)
	if err != nil || readiness.Status != "ready" || readiness.Checks["database"].Engine != "postgres" || readiness.Checks["redis"].Engine != "redis" {
		t.Fatalf("ready = %+v, %v; want ready on postgres and redis", readiness, err)
	}
	status, err := api.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, component := range status.Components {
		if component.Status != "operational" {
			t.Errorf("module %s is %s at start, want operational", component.ID, component.Status)
		}
	}
	credentialsFile := filepath.Join(t.TempDir(), "nexus", "credentials.json")
	return &journey{
		t: t, dir: dir, server: server, db: db, mail: mail, api: api,
		email: "journey@example.com", password: "a long and unusual journey password",
		env: []string{"NEXUS_CREDENTIALS=" + credentialsFile, "NEXUS_SERVER=" + server, "NEXUS_SYNC_PASSPHRASE=" + journeyPassphrase},
	}
}

// cli runs the nexus command with the journey's environment and returns
// its stdout, stderr and exit code.
func (j *journey) cli(args ...string) (string, string, int) {
	j.t.Helper()
	cmd := exec.Command(nexusBinary(j.t), args...)
	cmd.Dir = j.dir
	cmd.Env = append(os.Environ(), j.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// cliJSON runs the command with --json, requires exit code 0 and decodes
// its output into out.
func (j *journey) cliJSON(out any, args ...string) {
	j.t.Helper()
	stdout, stderr, code := j.cli(append(args, "--json")...)
	if code != 0 {
		j.t.Fatalf("nexus %s = %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		j.t.Fatalf("nexus %s --json printed no JSON (%v): %s", strings.Join(args, " "), err, stdout)
	}
}

func (j *journey) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	j.t.Cleanup(cancel)
	return ctx
}

func (j *journey) registerAndVerify() {
	t := j.t
	user, err := j.api.Register(j.ctx(), j.email, j.password, "Journey")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	j.userID = user.ID

	message := j.mail.WaitForMessage(t, j.email)
	link := regexp.MustCompile(`https?://\S+\?token=\S+`).FindString(message.Text)
	if link == "" {
		t.Fatalf("the verification mail has no link:\n%s", message.Text)
	}
	parsed, err := url.Parse(link)
	if err != nil {
		t.Fatalf("parse the verification link %q: %v", link, err)
	}
	if err := j.api.VerifyEmail(j.ctx(), parsed.Query().Get("token")); err != nil {
		t.Fatalf("verify email: %v", err)
	}
}

// login signs in with `nexus login` over the device flow, approving the
// code on the verification page as a browser would.
func (j *journey) login() {
	t := j.t
	loginWithDevice(t, j.env, j.server, j.email, j.password)

	var me client.User
	j.cliJSON(&me, "whoami")
	if me.ID != j.userID || !me.EmailVerified {
		t.Fatalf("whoami = %+v, want the verified user %s", me, j.userID)
	}
	// The Go client uses the tokens that nexus login stored.
	j.api.SetTokens(j.storedTokens())
}

func (j *journey) storedTokens() client.Tokens {
	j.t.Helper()
	var stored client.Tokens
	for _, entry := range j.env {
		if path, ok := strings.CutPrefix(entry, "NEXUS_CREDENTIALS="); ok {
			data, err := os.ReadFile(path)
			if err != nil {
				j.t.Fatalf("read the stored credentials: %v", err)
			}
			if err := json.Unmarshal(data, &stored); err != nil {
				j.t.Fatalf("decode the stored credentials: %v", err)
			}
		}
	}
	return stored
}

func (j *journey) entitlementsAndTrial() {
	t := j.t
	var before client.Entitlements
	j.cliJSON(&before, "entitlements")
	if before.Tier != "core" || before.Source != "default" {
		t.Errorf("entitlements before the trial = %s from %s, want core from default", before.Tier, before.Source)
	}
	var trial client.Trial
	j.cliJSON(&trial, "trial", "start")
	if trial.Tier != "pro" || !trial.Active {
		t.Errorf("trial = %+v, want an active pro trial", trial)
	}
	during, err := j.api.Entitlements(j.ctx())
	if err != nil || during.Tier != "pro" || during.Source != "trial" {
		t.Errorf("entitlements during the trial = %+v, %v; want pro from trial", during, err)
	}
}

// checkoutToStudio creates a checkout session through stripe-mock, then
// delivers the signed subscription event that Stripe would send after
// payment, which upgrades the user to Studio.
func (j *journey) checkoutToStudio() {
	t := j.t
	stdout, stderr, code := j.cli("billing", "checkout", "--tier", "studio")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(stdout), "http") {
		t.Fatalf("billing checkout = %d %q %q, want the checkout URL", code, stdout, stderr)
	}

	var customerID string
	if err := j.db.QueryRow(`SELECT customer_id FROM billing_customers WHERE user_id = $1`, j.userID).Scan(&customerID); err != nil {
		t.Fatalf("read the Stripe customer of the checkout: %v", err)
	}
	now := time.Now()
	event, err := json.Marshal(map[string]any{
		"id": "evt_e2e_studio", "object": "event", "type": "customer.subscription.created",
		"created": now.Unix(), "api_version": stripe.APIVersion,
		"data": map[string]any{"object": map[string]any{
			"id": "sub_e2e_studio", "object": "subscription", "customer": customerID, "status": "active",
			"current_period_end": now.Add(30 * 24 * time.Hour).Unix(), "cancel_at_period_end": false,
			"items": map[string]any{"data": []any{map[string]any{"price": map[string]any{"id": journeyStudioPrice}}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: event, Secret: journeyWebhookSecret, Timestamp: now})
	req, _ := http.NewRequest(http.MethodPost, j.server+"/v1/billing/webhooks", bytes.NewReader(event))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("deliver the webhook: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"applied"`) {
		t.Fatalf("webhook = %d %s, want the event applied", res.StatusCode, body)
	}

	var after client.Entitlements
	j.cliJSON(&after, "entitlements")
	if after.Tier != "studio" || after.Source != "subscription" {
		t.Fatalf("entitlements after the webhook = %s from %s, want studio from subscription", after.Tier, after.Source)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}

// syncRoundTrip pushes a folder from one device, pulls it on a second,
// changes one file on both, and resolves the conflict with --force.
func (j *journey) syncRoundTrip() {
	t := j.t
	laptop, desktop := t.TempDir(), t.TempDir()
	writeFiles(t, laptop, map[string]string{
		"notes/today.md":      "secret plans for today\n",
		"settings/theme.json": `{"theme": "dark"}`,
		"bin/tool.sh":         "#!/bin/sh\necho hi\n",
	})
	if err := os.Chmod(filepath.Join(laptop, "bin/tool.sh"), 0o755); err != nil {
		t.Fatal(err)
	}

	var pushed struct {
		Written   []string `json:"written"`
		Conflicts []struct {
			Path string `json:"path"`
		} `json:"conflicts"`
	}
	j.cliJSON(&pushed, "sync", "push", laptop)
	if len(pushed.Written) != 3 {
		t.Fatalf("first push wrote %v, want 3 files", pushed.Written)
	}
	var payloads [][]byte
	rows, err := j.db.Query(`SELECT payload FROM sync_items WHERE user_id = $1 AND NOT deleted`, j.userID)
	if err != nil {
		t.Fatalf("read stored payloads: %v", err)
	}
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, payload)
	}
	rows.Close()
	if len(payloads) != 3 {
		t.Fatalf("stored items = %d, want 3", len(payloads))
	}
	for _, payload := range payloads {
		for _, clear := range []string{"secret plans", "today.md", "theme", "echo hi"} {
			if bytes.Contains(payload, []byte(clear)) {
				t.Fatalf("the server stores %q in the clear", clear)
			}
		}
	}

	j.cliJSON(&pushed, "sync", "pull", desktop)
	if got := readFile(t, filepath.Join(desktop, "notes/today.md")); got != "secret plans for today\n" {
		t.Fatalf("pulled today.md = %q", got)
	}
	if info, err := os.Stat(filepath.Join(desktop, "bin/tool.sh")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("pulled tool.sh: %v, mode %v; want an executable", err, info.Mode())
	}

	// Both devices change the same file; the desktop pushes first.
	writeFiles(t, desktop, map[string]string{"notes/today.md": "desktop edit\n"})
	j.cliJSON(&pushed, "sync", "push", desktop)
	writeFiles(t, laptop, map[string]string{"notes/today.md": "laptop edit\n"})
	stdout, stderr, code := j.cli("sync", "push", laptop)
	if code != 1 || !strings.Contains(stdout, "conflict notes/today.md") || !strings.Contains(stderr, "1 conflicting") {
		t.Fatalf("conflicting push = %d\nstdout: %s\nstderr: %s\nwant the conflict on notes/today.md", code, stdout, stderr)
	}
	stdout, _, code = j.cli("sync", "pull", laptop)
	if code != 1 || !strings.Contains(stdout, "conflict notes/today.md") {
		t.Fatalf("pull over a local change = %d %s, want the conflict reported", code, stdout)
	}
	if got := readFile(t, filepath.Join(laptop, "notes/today.md")); got != "laptop edit\n" {
		t.Fatalf("the pull overwrote the local change: %q", got)
	}

	// The laptop keeps its version; the desktop then receives it and a deletion.
	j.cliJSON(&pushed, "sync", "push", laptop, "--force")
	if len(pushed.Written) != 1 || len(pushed.Conflicts) != 0 {
		t.Fatalf("forced push = %+v, want one write and no conflict", pushed)
	}
	if err := os.Remove(filepath.Join(laptop, "settings/theme.json")); err != nil {
		t.Fatal(err)
	}
	j.cliJSON(&pushed, "sync", "push", laptop)
	var pulled struct {
		Written []string `json:"written"`
		Deleted []string `json:"deleted"`
	}
	j.cliJSON(&pulled, "sync", "pull", desktop)
	if got := readFile(t, filepath.Join(desktop, "notes/today.md")); got != "laptop edit\n" {
		t.Errorf("desktop today.md after the forced push = %q, want the laptop's", got)
	}
	if _, err := os.Stat(filepath.Join(desktop, "settings/theme.json")); !os.IsNotExist(err) || len(pulled.Deleted) != 1 {
		t.Errorf("theme.json on the desktop: %v, deleted %v; want it removed", err, pulled.Deleted)
	}

	// A folder of the desktop replaced by a link to elsewhere: the pull
	// fails rather than write through the link.
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"today.md": "outside\n"})
	if err := os.RemoveAll(filepath.Join(desktop, "notes")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(desktop, "notes")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, laptop, map[string]string{"notes/today.md": "through the link?\n"})
	j.cliJSON(&pushed, "sync", "push", laptop)
	if _, stderr, code := j.cli("sync", "pull", desktop); code != 1 || !strings.Contains(stderr, "path escapes") {
		t.Errorf("pull through a linked folder = %d %q, want the escape refused", code, stderr)
	}
	if got := readFile(t, filepath.Join(outside, "today.md")); got != "outside\n" {
		t.Errorf("the pull wrote outside the folder: %q", got)
	}

	// A wrong passphrase opens nothing.
	wrong := append(append([]string(nil), j.env...), "NEXUS_SYNC_PASSPHRASE=not the passphrase")
	cmd := exec.Command(nexusBinary(t), "sync", "pull", t.TempDir())
	cmd.Env = append(os.Environ(), wrong...)
	output, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(output), "passphrase does not open") {
		t.Errorf("pull with a wrong passphrase = %d %s", cmd.ProcessState.ExitCode(), output)
	}
}

// skills publishes a skill folder with the CLI, finds it and installs it
// into a skills folder.
func (j *journey) skills() {
	t := j.t
	source := filepath.Join(t.TempDir(), "journey-notes")
	writeFiles(t, source, map[string]string{
		"SKILL.md":         "---\nname: journey-notes\ndescription: Keeps notes of a journey through the product.\nversion: 1.0.0\nlicense: MIT\n---\n# Journey notes\nWrite down each step.\n",
		"scripts/check.sh": "#!/bin/sh\necho ok\n",
	})

	if err := os.Chmod(filepath.Join(source, "scripts/check.sh"), 0o755); err != nil {
		t.Fatal(err)
	}

	var published client.SkillVersion
	j.cliJSON(&published, "skills", "publish", source)
	if published.Name != "journey-notes" || published.Version != "1.0.0" || !published.Latest {
		t.Fatalf("published = %+v, want journey-notes 1.0.0 as latest", published)
	}
	stdout, stderr, code := j.cli("skills", "publish", source)
	if code != 0 || !strings.Contains(stdout, "Already published") {
		t.Errorf("publishing the same folder again = %d %q %q, want the existing version", code, stdout, stderr)
	}

	var page client.SkillSearchPage
	j.cliJSON(&page, "skills", "search", "journey")
	if len(page.Items) != 1 || page.Items[0].Name != "journey-notes" {
		t.Fatalf("search = %+v, want journey-notes", page.Items)
	}
	var info struct {
		client.Skill
		Versions []client.SkillVersion `json:"versions"`
	}
	j.cliJSON(&info, "skills", "info", "journey-notes")
	if len(info.Owners) != 1 || info.Owners[0] != j.userID || len(info.Versions) != 1 {
		t.Errorf("info = %+v, want the user as owner and one version", info)
	}

	skillsDir := filepath.Join(t.TempDir(), "skills")
	var installed struct {
		Name string `json:"name"`
		Path string `json:"path"`
	}
	j.cliJSON(&installed, "skills", "install", "journey-notes@1.0.0", "--dir", skillsDir)
	if got := readFile(t, filepath.Join(skillsDir, "journey-notes", "SKILL.md")); !strings.Contains(got, "Write down each step.") {
		t.Errorf("installed SKILL.md = %q", got)
	}
	if info, err := os.Stat(filepath.Join(skillsDir, "journey-notes", "scripts/check.sh")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("installed check.sh: %v; want an executable", err)
	}
	skill, err := j.api.Skill(j.ctx(), "journey-notes")
	if err != nil || skill.InstallCount != 1 {
		t.Errorf("skill after install = %+v, %v; want one install", skill, err)
	}
}

// bearerTransport adds an access token to each request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(req)
}

// mcpServer provisions a notes server with the CLI, calls its tools with
// the official go-sdk client and reads its log.
func (j *journey) mcpServer() {
	t := j.t
	var created client.MCPServer
	j.cliJSON(&created, "mcp", "servers", "create", "--plugin", "notes", "--name", "journey notes", "--config", `{"title": "Journey"}`)
	if created.ID == "" || created.Plugin != "notes" {
		t.Fatalf("created server = %+v", created)
	}
	var listed []client.MCPServer
	j.cliJSON(&listed, "mcp", "servers", "list")
	if len(listed) != 1 || listed[0].ID != created.ID {
		t.Fatalf("servers list = %+v, want the new server", listed)
	}

	var token client.MCPTokenCreated
	j.cliJSON(&token, "mcp", "tokens", "create", created.ID, "--name", "journey")
	transport := &mcp.StreamableClientTransport{
		Endpoint:   j.api.MCPEndpointURL(created.ID),
		HTTPClient: &http.Client{Transport: bearerTransport{token: token.Token}, Timeout: time.Minute},
		MaxRetries: -1,
	}
	session, err := mcp.NewClient(&mcp.Implementation{Name: "nexus-e2e", Version: "1.0.0"}, nil).Connect(j.ctx(), transport, nil)
	if err != nil {
		t.Fatalf("connect the MCP client: %v", err)
	}
	defer session.Close()
	if _, err := session.CallTool(j.ctx(), &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"title": "buy milk"}}); err != nil {
		t.Fatalf("call add_note: %v", err)
	}
	result, err := session.CallTool(j.ctx(), &mcp.CallToolParams{Name: "search_notes", Arguments: map[string]any{"query": "milk"}})
	if err != nil || result.IsError {
		t.Fatalf("call search_notes: %v %+v", err, result)
	}
	found, _ := json.Marshal(result.StructuredContent)
	if !strings.Contains(string(found), "buy milk") {
		t.Errorf("search_notes = %s, want the note", found)
	}

	var logs client.MCPLogs
	j.cliJSON(&logs, "mcp", "logs", created.ID)
	if len(logs.Lines) == 0 {
		t.Error("mcp logs printed no line, want at least the supervisor's start record")
	}
}

// deleteAccount deletes the account through the client, then checks every
// table of the schema, as the database's catalog lists them, for any row
// that mentions the user's id or email.
func (j *journey) deleteAccount() {
	t := j.t
	before := j.rowsOfUser()
	for _, table := range []string{"users", "sessions", "billing_customers", "entitlement_subscriptions", "sync_items", "sync_keys", "mcp_servers", "skill_installations"} {
		if before[table] == 0 {
			t.Errorf("table %s has no row of the user before deletion, so the check below could not see one (rows by table: %v)", table, before)
		}
	}

	if err := j.api.DeleteAccount(j.ctx(), j.password); err != nil {
		t.Fatalf("delete the account: %v", err)
	}

	for table, count := range j.rowsOfUser() {
		t.Errorf("table %s still has %d rows of the deleted user %s", table, count, j.userID)
	}
	if _, stderr, code := j.cli("whoami"); code != 1 {
		t.Errorf("whoami after deletion = %d %s, want a failure", code, stderr)
	}
}

// rowsOfUser counts, in every table of the schema, the rows that mention
// the user's id or email in any column, and returns the tables with rows.
func (j *journey) rowsOfUser() map[string]int {
	t := j.t
	rows, err := j.db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("the schema lists %d tables: %v; want every module's", len(tables), tables)
	}

	found := map[string]int{}
	for _, table := range tables {
		var count int
		// A row cast to text contains every column, JSON and arrays included.
		query := fmt.Sprintf(`SELECT COUNT(*) FROM %q AS r WHERE strpos(r::text, $1) > 0 OR strpos(lower(r::text), lower($2)) > 0`, table)
		if err := j.db.QueryRow(query, j.userID, j.email).Scan(&count); err != nil {
			t.Fatalf("search %s: %v", table, err)
		}
		if count > 0 {
			found[table] = count
		}
	}
	return found
}
