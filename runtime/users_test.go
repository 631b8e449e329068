package runtime_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// memorySessions is a SessionSource over a map that counts its lookups.
type memorySessions struct {
	mu       sync.Mutex
	sessions map[string]runtime.SessionState
	lookups  atomic.Int64
}

func (m *memorySessions) LookupSession(_ context.Context, id string) (runtime.SessionState, error) {
	m.lookups.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	state, ok := m.sessions[id]
	if !ok {
		return runtime.SessionState{}, runtime.ErrSessionNotFound
	}
	return state, nil
}

func (m *memorySessions) put(id string, state runtime.SessionState) {
	m.mu.Lock()
	m.sessions[id] = state
	m.mu.Unlock()
}

type fixedResolver struct {
	entitlements runtime.Entitlements
	calls        atomic.Int64
}

func (r *fixedResolver) Resolve(context.Context, string) (runtime.Entitlements, error) {
	r.calls.Add(1)
	return r.entitlements, nil
}

func coreEntitlements() runtime.Entitlements {
	return runtime.Entitlements{
		Tier: "core", TierName: "Core", Source: "default",
		Limits: configs.TierLimits{RequestsPerMinute: 60, Burst: 60},
	}
}

type usersFixture struct {
	users    *runtime.Users
	sessions *memorySessions
	resolver *fixedResolver
	clock    *clock.Fake
}

func newUsers(t *testing.T) usersFixture {
	t.Helper()
	system := actor.NewActorSystem()
	fake := clock.NewFake(time.Unix(1_800_000_000, 0))
	sessions := &memorySessions{sessions: map[string]runtime.SessionState{}}
	resolver := &fixedResolver{entitlements: coreEntitlements()}
	users := runtime.NewUsers(runtime.UsersOptions{
		System:                 system,
		Sessions:               sessions,
		Resolver:               resolver,
		Clock:                  fake,
		IdleTimeout:            time.Minute,
		SessionRecheckInterval: 15 * time.Second,
		AdmissionTimeout:       2 * time.Second,
	})
	t.Cleanup(func() {
		users.Stop()
		system.Shutdown()
	})
	sessions.put("s1", runtime.SessionState{UserID: "u1", ExpiresAt: fake.Now().Add(time.Hour)})
	return usersFixture{users: users, sessions: sessions, resolver: resolver, clock: fake}
}

func TestAdmitLiveSession(t *testing.T) {
	f := newUsers(t)

	admission, err := f.users.Admit(context.Background(), "u1", "s1")
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if admission.Entitlements.Tier != "core" {
		t.Errorf("tier = %q, want core", admission.Entitlements.Tier)
	}
	if admission.Decision.Remaining != 59 {
		t.Errorf("remaining = %d, want 59", admission.Decision.Remaining)
	}
	if f.users.Count() != 1 {
		t.Errorf("live actors = %d, want 1", f.users.Count())
	}
}

func TestAdmitRejectsEndedSessions(t *testing.T) {
	f := newUsers(t)
	now := f.clock.Now()
	f.sessions.put("revoked", runtime.SessionState{UserID: "u1", ExpiresAt: now.Add(time.Hour), Revoked: true})
	f.sessions.put("expired", runtime.SessionState{UserID: "u1", ExpiresAt: now.Add(-time.Second)})
	f.sessions.put("other", runtime.SessionState{UserID: "u2", ExpiresAt: now.Add(time.Hour)})

	for _, sessionID := range []string{"revoked", "expired", "other", "missing"} {
		_, err := f.users.Admit(context.Background(), "u1", sessionID)
		if !errors.Is(err, runtime.ErrSessionEnded) {
			t.Errorf("session %s: err = %v, want ErrSessionEnded", sessionID, err)
		}
	}
}

func TestAdmitSeesRevocationAfterRecheck(t *testing.T) {
	f := newUsers(t)
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("first Admit: %v", err)
	}

	f.sessions.put("s1", runtime.SessionState{UserID: "u1", ExpiresAt: f.clock.Now().Add(time.Hour), Revoked: true})
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit within the recheck interval: %v, want the cached view", err)
	}

	f.clock.Advance(15 * time.Second)
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); !errors.Is(err, runtime.ErrSessionEnded) {
		t.Fatalf("Admit after the recheck interval: err = %v, want ErrSessionEnded", err)
	}
}

func TestEndSessionTakesEffectAtOnce(t *testing.T) {
	f := newUsers(t)
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit: %v", err)
	}

	f.users.EndSession("u1", "s1")
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); !errors.Is(err, runtime.ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", err)
	}
}

func TestAdmitRateLimitsAtTierLimit(t *testing.T) {
	f := newUsers(t)

	for i := 0; i < 60; i++ {
		if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	admission, err := f.users.Admit(context.Background(), "u1", "s1")
	if !errors.Is(err, runtime.ErrRateLimited) {
		t.Fatalf("61st request: err = %v, want ErrRateLimited", err)
	}
	if admission.Decision.RetryAfter != time.Second {
		t.Errorf("retry after = %v, want 1s", admission.Decision.RetryAfter)
	}
	if admission.Limit.Rate != 60 {
		t.Errorf("limit rate = %d, want 60", admission.Limit.Rate)
	}
}

func TestAdmitConcurrentNeverExceedsBurst(t *testing.T) {
	f := newUsers(t)

	var admitted, limited atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.users.Admit(context.Background(), "u1", "s1")
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, runtime.ErrRateLimited):
				limited.Add(1)
			default:
				t.Errorf("Admit: %v", err)
			}
		}()
	}
	wg.Wait()

	if admitted.Load() != 60 {
		t.Errorf("admitted = %d, want 60 (the burst)", admitted.Load())
	}
	if limited.Load() != 140 {
		t.Errorf("rate limited = %d, want 140", limited.Load())
	}
}

func TestPassivateIdleActors(t *testing.T) {
	f := newUsers(t)
	f.sessions.put("s2", runtime.SessionState{UserID: "u2", ExpiresAt: f.clock.Now().Add(time.Hour)})
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit u1: %v", err)
	}
	f.clock.Advance(50 * time.Second)
	if _, err := f.users.Admit(context.Background(), "u2", "s2"); err != nil {
		t.Fatalf("Admit u2: %v", err)
	}

	f.clock.Advance(11 * time.Second)
	if stopped := f.users.Passivate(); stopped != 1 {
		t.Fatalf("passivated %d actors, want 1 (only u1 is idle)", stopped)
	}
	if f.users.Count() != 1 {
		t.Fatalf("live actors = %d, want 1", f.users.Count())
	}

	// The next request re-creates u1's actor, which reads its session again.
	lookups := f.sessions.lookups.Load()
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit after passivation: %v", err)
	}
	if f.sessions.lookups.Load() != lookups+1 {
		t.Errorf("session lookups = %d, want %d", f.sessions.lookups.Load(), lookups+1)
	}
}

func TestPassivateRacesWithAdmit(t *testing.T) {
	f := newUsers(t)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				f.clock.Advance(2 * time.Minute)
				f.users.Passivate()
			}
		}
	}()

	for i := 0; i < 300; i++ {
		_, err := f.users.Admit(context.Background(), "u1", "s1")
		if err != nil && !errors.Is(err, runtime.ErrRateLimited) && !errors.Is(err, runtime.ErrSessionEnded) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestRefreshEntitlementsResolvesAgain(t *testing.T) {
	f := newUsers(t)
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if f.resolver.calls.Load() != 1 {
		t.Fatalf("resolver calls = %d, want 1 (cached)", f.resolver.calls.Load())
	}

	f.users.RefreshEntitlements("u1")
	if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if f.resolver.calls.Load() != 2 {
		t.Errorf("resolver calls = %d, want 2", f.resolver.calls.Load())
	}
}
