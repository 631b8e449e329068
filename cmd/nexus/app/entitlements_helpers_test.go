package app_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/storage"
)

// entitlementsView is GET /v1/entitlements' data.
type entitlementsView struct {
	Tier     string   `json:"tier"`
	TierName string   `json:"tier_name"`
	Source   string   `json:"source"`
	Features []string `json:"features"`
	Limits   struct {
		RequestsPerMinute int `json:"requests_per_minute"`
	} `json:"limits"`
	Trial *trialView `json:"trial"`
}

type trialView struct {
	Tier      string    `json:"tier"`
	StartedAt time.Time `json:"started_at"`
	EndsAt    time.Time `json:"ends_at"`
	Active    bool      `json:"active"`
}

func (v entitlementsView) has(feature string) bool {
	for _, f := range v.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// member is a user with a session that outlives the longest test jump of
// the clock, so requests after a trial's end still authenticate.
type member struct {
	id, session string
}

// entitlementRoutes mounts a route that needs the sync feature.
func entitlementRoutes() []edge.Route {
	return []edge.Route{{
		Method: "GET", Path: "/v1/test/sync", Authenticated: true, Feature: "sync",
		Handler: func(r *edge.Request) error { return r.JSON(http.StatusOK, map[string]string{"status": "synced"}) },
	}}
}

// startEntitlementsServer starts a server with the gated test route and
// the per-IP limit out of the way.
func startEntitlementsServer(t *testing.T, e engine, configure ...func(cfg *configs.Config)) *testServer {
	t.Helper()
	return startServer(t, serverOption{engine: e, routes: entitlementRoutes(), config: func(cfg *configs.Config) {
		cfg.RateLimit.IPPerMinute = 1_000_000
		cfg.RateLimit.IPBurst = 1_000_000
		for _, apply := range configure {
			apply(cfg)
		}
	}})
}

// member inserts a user with a session of 60 days.
func (s *testServer) member(t *testing.T) member {
	t.Helper()
	m := member{id: "usr_" + randomID(t), session: "ses_" + randomID(t)}
	now := s.clock.Now()
	sessions := storage.NewSessions(s.app.DB())
	ctx := context.Background()
	if err := sessions.InsertUser(ctx, m.id, m.id+"@example.com", now); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	record := storage.SessionRecord{ID: m.session, UserID: m.id, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(60 * 24 * time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		t.Fatalf("insert session: %v", err)
	}
	return m
}

// operator inserts a member with the admin role.
func (s *testServer) operator(t *testing.T) member {
	t.Helper()
	m := s.member(t)
	s.exec(t, `UPDATE users SET role = 'admin' WHERE id = $1`, m.id)
	return m
}

// as sends a request of the member with a token signed at the clock's time.
func (s *testServer) as(t *testing.T, m member, method, path, body string) response {
	t.Helper()
	headers := []string{"Authorization", "Bearer " + s.token(t, m.id, m.session, nil)}
	if body != "" {
		headers = append(headers, "Content-Type", "application/json")
	}
	return s.do(t, method, path, body, headers...)
}

// entitlements returns the member's GET /v1/entitlements and the response.
func (s *testServer) entitlements(t *testing.T, m member) (entitlementsView, response) {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/entitlements", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/entitlements = %d %s", res.status, res.body)
	}
	var view entitlementsView
	res.data(t, &view)
	return view, res
}

func (s *testServer) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := s.app.DB().ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}

// count returns the number of rows of a query of the form SELECT COUNT(*) ...
func (s *testServer) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.app.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	return n
}

// trialEndedAt returns the ended_at column of the member's trial row.
func (s *testServer) trialEndedAt(t *testing.T, m member) sql.NullInt64 {
	t.Helper()
	var ended sql.NullInt64
	err := s.app.DB().QueryRowContext(context.Background(),
		`SELECT ended_at FROM entitlement_trials WHERE user_id = $1`, m.id).Scan(&ended)
	if err != nil {
		t.Fatalf("load trial row: %v", err)
	}
	return ended
}
