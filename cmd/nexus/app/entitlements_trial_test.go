package app_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
)

const trialLength = 14 * 24 * time.Hour

func TestEntitlementsShape(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		m := s.member(t)

		res := s.as(t, m, "GET", "/v1/entitlements", "")
		if res.status != http.StatusOK {
			t.Fatalf("GET /v1/entitlements = %d %s", res.status, res.body)
		}
		var envelope struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(res.body, &envelope); err != nil {
			t.Fatalf("decode %s: %v", res.body, err)
		}
		for _, key := range []string{"tier", "tier_name", "source", "features", "limits", "trial"} {
			if _, ok := envelope.Data[key]; !ok {
				t.Errorf("key %q is missing from %s", key, res.body)
			}
		}
		if len(envelope.Data) != 6 {
			t.Errorf("keys = %d, want 6: %s", len(envelope.Data), res.body)
		}
		if string(envelope.Data["trial"]) != "null" {
			t.Errorf("trial = %s, want null for a user who never had one", envelope.Data["trial"])
		}

		view, _ := s.entitlements(t, m)
		if view.Tier != "core" {
			t.Errorf("tier = %q, want core", view.Tier)
		}
		if view.TierName != "Core" {
			t.Errorf("tier_name = %q, want Core", view.TierName)
		}
		if view.Source != "default" {
			t.Errorf("source = %q, want default", view.Source)
		}
		if view.Limits.RequestsPerMinute != 60 {
			t.Errorf("requests_per_minute = %d, want 60", view.Limits.RequestsPerMinute)
		}
	})
}

func TestTrialLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		m := s.member(t)

		view, res := s.entitlements(t, m)
		if view.Tier != "core" || view.Trial != nil {
			t.Fatalf("before the trial = %+v, want core without a trial", view)
		}
		if got := res.header.Get("X-RateLimit-Limit"); got != "60" {
			t.Errorf("X-RateLimit-Limit before the trial = %q, want 60", got)
		}

		started := s.clock.Now()
		res = s.as(t, m, "POST", "/v1/entitlements/trial", "")
		if res.status != http.StatusCreated {
			t.Fatalf("start trial = %d %s", res.status, res.body)
		}
		var trial trialView
		res.data(t, &trial)
		if trial.Tier != "pro" {
			t.Errorf("trial tier = %q, want pro", trial.Tier)
		}
		if !trial.Active {
			t.Error("a new trial is not active")
		}
		if !trial.EndsAt.Equal(started.Add(trialLength)) {
			t.Errorf("ends_at = %v, want %v", trial.EndsAt, started.Add(trialLength))
		}

		view, res = s.entitlements(t, m)
		if view.Tier != "pro" {
			t.Errorf("tier during the trial = %q, want pro", view.Tier)
		}
		if view.Source != "trial" {
			t.Errorf("source during the trial = %q, want trial", view.Source)
		}
		if view.Trial == nil || !view.Trial.Active {
			t.Errorf("trial state = %+v, want active", view.Trial)
		}
		if got := res.header.Get("X-RateLimit-Limit"); got != "300" {
			t.Errorf("X-RateLimit-Limit during the trial = %q, want 300", got)
		}

		again := s.as(t, m, "POST", "/v1/entitlements/trial", "")
		if again.status != http.StatusConflict {
			t.Fatalf("second start = %d %s, want 409", again.status, again.body)
		}
		if code := again.envelopeError(t).Code; code != "CONFLICT" {
			t.Errorf("second start code = %q, want CONFLICT", code)
		}

		// The trial ends by the clock alone: no request until the row is checked.
		s.clock.Advance(trialLength - time.Second)
		if ended := s.trialEndedAt(t, m); ended.Valid {
			t.Fatalf("trial ended at %d, a second before its end", ended.Int64)
		}
		s.clock.Advance(time.Second)
		ended := s.trialEndedAt(t, m)
		if !ended.Valid {
			t.Fatal("trial row has no ended_at after its end")
		}
		if ended.Int64 != trial.EndsAt.UnixMilli() {
			t.Errorf("ended_at = %d, want ends_at %d", ended.Int64, trial.EndsAt.UnixMilli())
		}
		if n := s.count(t, `SELECT COUNT(*) FROM entitlement_history WHERE user_id = $1 AND action = 'trial_ended' AND actor = 'system'`, m.id); n != 1 {
			t.Errorf("trial_ended history entries = %d, want 1", n)
		}

		view, res = s.entitlements(t, m)
		if view.Tier != "core" {
			t.Errorf("tier after the trial = %q, want core", view.Tier)
		}
		if view.Source != "default" {
			t.Errorf("source after the trial = %q, want default", view.Source)
		}
		if view.Trial == nil || view.Trial.Active {
			t.Errorf("trial state after the end = %+v, want present and inactive", view.Trial)
		}
		if got := res.header.Get("X-RateLimit-Limit"); got != "60" {
			t.Errorf("X-RateLimit-Limit after the trial = %q, want 60", got)
		}

		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusConflict {
			t.Errorf("start after the end = %d %s, want 409", res.status, res.body)
		}
	})
}

func TestTrialConcurrentStarts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		m := s.member(t)
		const starts = 6

		statuses := make(chan int, starts)
		var wg sync.WaitGroup
		for range starts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- s.as(t, m, "POST", "/v1/entitlements/trial", "").status
			}()
		}
		wg.Wait()
		close(statuses)

		counts := map[int]int{}
		for status := range statuses {
			counts[status]++
		}
		if counts[http.StatusCreated] != 1 {
			t.Errorf("201 answers = %d, want 1 (all: %v)", counts[http.StatusCreated], counts)
		}
		if counts[http.StatusConflict] != starts-1 {
			t.Errorf("409 answers = %d, want %d (all: %v)", counts[http.StatusConflict], starts-1, counts)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM entitlement_history WHERE user_id = $1 AND action = 'trial_started'`, m.id); n != 1 {
			t.Errorf("trial_started history entries = %d, want 1", n)
		}
	})
}

func TestTrialConfig(t *testing.T) {
	s := startEntitlementsServer(t, engineSQLite, func(cfg *configs.Config) {
		cfg.Modules["entitlements"]["trial_tier"] = "studio"
		cfg.Modules["entitlements"]["trial_length"] = "48h"
	})
	m := s.member(t)
	started := s.clock.Now()

	res := s.as(t, m, "POST", "/v1/entitlements/trial", "")
	if res.status != http.StatusCreated {
		t.Fatalf("start trial = %d %s", res.status, res.body)
	}
	var trial trialView
	res.data(t, &trial)
	if trial.Tier != "studio" {
		t.Errorf("trial tier = %q, want studio", trial.Tier)
	}
	if !trial.EndsAt.Equal(started.Add(48 * time.Hour)) {
		t.Errorf("ends_at = %v, want 48h after the start", trial.EndsAt)
	}
}

func TestTrialEndsAfterRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		first := startEntitlementsServer(t, e)
		m := first.member(t)
		res := first.as(t, m, "POST", "/v1/entitlements/trial", "")
		if res.status != http.StatusCreated {
			t.Fatalf("start trial = %d %s", res.status, res.body)
		}
		var trial trialView
		res.data(t, &trial)
		first.stop()

		second := startEntitlementsServer(t, e, func(cfg *configs.Config) {
			cfg.DataDir = first.cfg.DataDir
			cfg.Database.URL = first.cfg.Database.URL
			cfg.Redis.URL = first.cfg.Redis.URL
			cfg.Redis.Prefix = first.cfg.Redis.Prefix
		})
		second.clock.Set(trial.StartedAt.Add(time.Minute))
		if view, _ := second.entitlements(t, m); view.Tier != "pro" {
			t.Errorf("tier after the restart = %q, want pro", view.Tier)
		}

		second.clock.Set(trial.EndsAt)
		if ended := second.trialEndedAt(t, m); !ended.Valid || ended.Int64 != trial.EndsAt.UnixMilli() {
			t.Errorf("ended_at after the restart = %+v, want %d", ended, trial.EndsAt.UnixMilli())
		}
		view, res := second.entitlements(t, m)
		if view.Tier != "core" {
			t.Errorf("tier after the trial = %q, want core", view.Tier)
		}
		if got := res.header.Get("X-RateLimit-Limit"); got != "60" {
			t.Errorf("X-RateLimit-Limit after the trial = %q, want 60", got)
		}
	})
}

func TestFeatureGate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		m := s.member(t)

		res := s.as(t, m, "GET", "/v1/test/sync", "")
		if res.status != http.StatusForbidden {
			t.Fatalf("Core on a sync route = %d %s, want 403", res.status, res.body)
		}
		apiErr := res.envelopeError(t)
		if apiErr.Code != "TIER_REQUIRED" {
			t.Errorf("code = %q, want TIER_REQUIRED", apiErr.Code)
		}
		if apiErr.Details["feature"] != "sync" {
			t.Errorf("details.feature = %v, want sync", apiErr.Details["feature"])
		}
		if apiErr.Details["required_tier"] != "pro" {
			t.Errorf("details.required_tier = %v, want pro", apiErr.Details["required_tier"])
		}
		if apiErr.Details["current_tier"] != "core" {
			t.Errorf("details.current_tier = %v, want core", apiErr.Details["current_tier"])
		}
		if res.header.Get("X-RateLimit-Limit") != "60" {
			t.Errorf("the 403 lacks the user's rate-limit headers: %v", res.header)
		}

		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusCreated {
			t.Fatalf("start trial = %d %s", res.status, res.body)
		}
		if res := s.as(t, m, "GET", "/v1/test/sync", ""); res.status != http.StatusOK {
			t.Errorf("Pro trial on a sync route = %d %s, want 200", res.status, res.body)
		}
	})
}
