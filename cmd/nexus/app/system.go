package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/edge/openapi"
	"github.com/nexus-suite/nexus/runtime"
)

// systemRoutes are the routes that need no authentication and belong to no
// module: they respond even when every module is disabled, and the per-IP
// limit does not apply to them, so probes and status pages can poll freely.
func (a *App) systemRoutes() []edge.Route {
	return []edge.Route{
		{Method: "GET", Path: "/health", Handler: a.health, Summary: "Liveness"},
		{Method: "GET", Path: "/ready", Handler: a.ready, Summary: "Readiness of the database and Redis"},
		{Method: "GET", Path: "/status", Handler: a.status, Summary: "Module status for a public status page"},
		{Method: "GET", Path: "/metrics", Handler: a.metrics.Handler(), Summary: "Prometheus metrics"},
		{Method: "GET", Path: "/.well-known/jwks.json", Handler: a.jwks, Summary: "The public signing keys"},
		{Method: "GET", Path: "/v1/openapi.json", Handler: serveOpenAPI, Summary: "The OpenAPI document"},
	}
}

func (a *App) health(r *edge.Request) error {
	return r.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// check is the result of one readiness check.
type check struct {
	Status     string `json:"status"` // ok or fail
	Engine     string `json:"engine"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// readiness is the body of /ready, in both the 200 and the 503 case.
type readiness struct {
	Status string           `json:"status"` // ready or unavailable
	Checks map[string]check `json:"checks"`
}

// ready pings the database and the key-value store at the same time, each
// bounded by its ready_timeout. A pool with no free connection fails the
// same way as an unreachable server, because the ping waits for a connection.
func (a *App) ready(r *edge.Request) error {
	kvEngine := "in-process"
	if a.cfg.Redis.URL != "" {
		kvEngine = "redis"
	}

	var wg sync.WaitGroup
	var database, redis check
	wg.Add(2)
	go func() {
		defer wg.Done()
		database = runCheck(string(a.db.Dialect), a.cfg.Database.ReadyTimeout, a.db.PingContext)
	}()
	go func() {
		defer wg.Done()
		redis = runCheck(kvEngine, a.cfg.Redis.ReadyTimeout, a.kv.Ping)
	}()
	wg.Wait()

	body := readiness{Status: "ready", Checks: map[string]check{"database": database, "redis": redis}}
	status := http.StatusOK
	if database.Status != "ok" || redis.Status != "ok" {
		body.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	return r.JSON(status, body)
}

func runCheck(engine string, timeout time.Duration, ping func(context.Context) error) check {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	start := time.Now()
	err := ping(ctx)
	result := check{Status: "ok", Engine: engine, DurationMS: time.Since(start).Milliseconds()}
	switch {
	case ctx.Err() != nil:
		result.Status, result.Error = "fail", "timed out after "+timeout.String()
	case err != nil:
		result.Status, result.Error = "fail", "ping failed"
	}
	return result
}

// statusPage is a subset of the Atlassian Statuspage summary, so existing
// status-page tools can read it; it is served outside the envelope for that reason.
type statusPage struct {
	Page       statusPageInfo    `json:"page"`
	Status     statusIndicator   `json:"status"`
	Components []statusComponent `json:"components"`
}

type statusPageInfo struct {
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updated_at"`
}

type statusIndicator struct {
	Indicator   string `json:"indicator"`
	Description string `json:"description"`
}

type statusComponent struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Restarts  int       `json:"restarts"`
	UpdatedAt time.Time `json:"updated_at"`
}

var indicatorDescriptions = map[string]string{
	"none":     "All Systems Operational",
	"minor":    "Minor Service Outage",
	"major":    "Partial System Outage",
	"critical": "Major Service Outage",
}

// status always returns 200, and the body carries the health of each module.
func (a *App) status(r *edge.Request) error {
	statuses := a.manager.Statuses()
	page := statusPage{Page: statusPageInfo{Name: "Nexus"}}

	for _, s := range statuses {
		page.Components = append(page.Components, statusComponent{
			ID: s.Name, Name: s.Title, Status: s.Component(), Restarts: s.Restarts, UpdatedAt: s.UpdatedAt.UTC(),
		})
		if s.UpdatedAt.After(page.Page.UpdatedAt) {
			page.Page.UpdatedAt = s.UpdatedAt.UTC()
		}
	}
	indicator := runtime.Indicator(statuses)
	page.Status = statusIndicator{Indicator: indicator, Description: indicatorDescriptions[indicator]}

	body, err := jsonMarshal(page)
	if err != nil {
		return err
	}
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Raw(http.StatusOK, "application/json", body)
	return nil
}

// jwks writes the key set in RFC 7517 form, outside the envelope, so
// that standard JWT libraries can fetch it.
func (a *App) jwks(r *edge.Request) error {
	r.Ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	r.Raw(http.StatusOK, "application/json", a.keys.JWKS())
	return nil
}

func serveOpenAPI(r *edge.Request) error {
	r.Raw(http.StatusOK, "application/json", openapi.JSON())
	return nil
}
