package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/auth"
)

// TestLogoutReachesOtherNode runs two servers on one PostgreSQL database
// and one Redis: a session ended on one node is rejected by the user's
// actor on the other at once, before that actor's next session recheck.
func TestLogoutReachesOtherNode(t *testing.T) {
	first := startAuthServer(t, enginePostgres)
	second := startServer(t, serverOption{config: func(cfg *configs.Config) {
		cfg.DataDir = first.cfg.DataDir
		cfg.Database.URL = first.cfg.Database.URL
		cfg.Redis.URL = first.cfg.Redis.URL
		cfg.Redis.Prefix = first.cfg.Redis.Prefix
	}})
	module, _ := second.app.Manager().Module("auth")
	module.(*auth.Module).SetMailer(first.outbox)

	pair := first.login(t, first.registerVerified(t), goodPassword)
	if res := second.get(t, "/v1/auth/me", pair.AccessToken); res.status != http.StatusOK {
		t.Fatalf("/me on the second node = %d %s", res.status, res.body)
	}

	if res := first.postJSON(t, "/v1/auth/logout", "", pair.AccessToken); res.status != http.StatusOK {
		t.Fatalf("logout on the first node = %d %s", res.status, res.body)
	}
	waitFor(t, "the second node to reject the ended session", func() bool {
		return second.get(t, "/v1/auth/me", pair.AccessToken).status == http.StatusUnauthorized
	})
}

// waitFor polls check until it holds, for effects that arrive
// asynchronously, such as a message through Redis pub/sub.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
