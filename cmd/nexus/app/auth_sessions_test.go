package app_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/runtime/clock"
)

func TestRefreshRotation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		first := s.login(t, email, goodPassword)

		res := s.refresh(t, first.RefreshToken)
		if res.status != http.StatusOK {
			t.Fatalf("refresh = %d %s", res.status, res.body)
		}
		var second tokens
		res.data(t, &second)
		if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
			t.Fatal("refresh returned the old tokens")
		}
		if second.SessionID != first.SessionID {
			t.Errorf("session = %s, want the same session %s", second.SessionID, first.SessionID)
		}

		// The old access token still works until it expires.
		if res := s.get(t, "/v1/auth/me", first.AccessToken); res.status != http.StatusOK {
			t.Errorf("old access token after a refresh = %d, want 200", res.status)
		}

		// A retry with the old refresh token inside the window returns the same pair.
		s.clock.Advance(5 * time.Second)
		var retried tokens
		res = s.refresh(t, first.RefreshToken)
		res.data(t, &retried)
		if res.status != http.StatusOK || retried != second {
			t.Fatalf("retry inside the window = %d %+v, want the same pair", res.status, retried)
		}

		// The successor rotates on as usual.
		res = s.refresh(t, second.RefreshToken)
		if res.status != http.StatusOK {
			t.Fatalf("refresh of the successor = %d %s", res.status, res.body)
		}
		var third tokens
		res.data(t, &third)

		// Reuse after the window ends the whole session.
		s.clock.Advance(11 * time.Second)
		if res := s.refresh(t, first.RefreshToken); res.status != http.StatusUnauthorized {
			t.Fatalf("reuse after the window = %d, want 401", res.status)
		}
		if res := s.refresh(t, third.RefreshToken); res.status != http.StatusUnauthorized {
			t.Errorf("the family's newest token after reuse = %d, want 401", res.status)
		}
		if res := s.get(t, "/v1/auth/me", third.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("access token of the ended session = %d, want 401", res.status)
		}
	})
}

func TestParallelRefreshesYieldOneSuccessor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		pair := s.login(t, s.registerVerified(t), goodPassword)

		results := make([]tokens, 5)
		statuses := make([]int, 5)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res := s.refresh(t, pair.RefreshToken)
				statuses[i] = res.status
				if res.status == http.StatusOK {
					res.data(t, &results[i])
				}
			}(i)
		}
		wg.Wait()

		for i := range results {
			if statuses[i] != http.StatusOK {
				t.Fatalf("refresh %d = %d, want 200", i, statuses[i])
			}
			if results[i] != results[0] {
				t.Errorf("refresh %d returned another pair than refresh 0", i)
			}
		}
		if res := s.refresh(t, results[0].RefreshToken); res.status != http.StatusOK {
			t.Errorf("the one successor does not refresh: %d", res.status)
		}
	})
}

func TestLogoutEndsSessionAtOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		pair := s.login(t, s.registerVerified(t), goodPassword)
		if res := s.get(t, "/v1/auth/me", pair.AccessToken); res.status != http.StatusOK {
			t.Fatalf("/me = %d", res.status)
		}

		if res := s.postJSON(t, "/v1/auth/logout", "", pair.AccessToken); res.status != http.StatusOK {
			t.Fatalf("logout = %d %s", res.status, res.body)
		}
		// No clock advance: the actor hears of the ended session at once.
		if res := s.get(t, "/v1/auth/me", pair.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("access token after logout = %d, want 401", res.status)
		}
		if res := s.refresh(t, pair.RefreshToken); res.status != http.StatusUnauthorized {
			t.Errorf("refresh after logout = %d, want 401", res.status)
		}
	})
}

func TestSessionManagement(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		a := s.login(t, email, goodPassword)
		b := s.login(t, email, goodPassword)
		c := s.login(t, email, goodPassword)
		other := s.login(t, s.registerVerified(t), goodPassword)

		var sessions []struct {
			ID         string `json:"id"`
			DeviceName string `json:"device_name"`
			IP         string `json:"ip"`
			Current    bool   `json:"current"`
		}
		s.get(t, "/v1/auth/sessions", a.AccessToken).data(t, &sessions)
		if len(sessions) != 3 {
			t.Fatalf("sessions = %d, want 3", len(sessions))
		}
		for _, sess := range sessions {
			if sess.Current != (sess.ID == a.SessionID) || sess.DeviceName != "test" || sess.IP != "127.0.0.1" {
				t.Errorf("session %+v", sess)
			}
		}

		if res := s.do(t, "DELETE", "/v1/auth/sessions/"+other.SessionID, "", "Authorization", "Bearer "+a.AccessToken); res.status != http.StatusNotFound {
			t.Errorf("ending another user's session = %d, want 404", res.status)
		}
		if res := s.get(t, "/v1/auth/me", other.AccessToken); res.status != http.StatusOK {
			t.Errorf("the other user's session = %d, want still 200", res.status)
		}

		if res := s.do(t, "DELETE", "/v1/auth/sessions/"+b.SessionID, "", "Authorization", "Bearer "+a.AccessToken); res.status != http.StatusOK {
			t.Fatalf("end session b = %d %s", res.status, res.body)
		}
		if res := s.get(t, "/v1/auth/me", b.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("session b after it ended = %d, want 401", res.status)
		}

		if res := s.do(t, "DELETE", "/v1/auth/sessions", "", "Authorization", "Bearer "+a.AccessToken); res.status != http.StatusOK || !strings.Contains(res.String(), `"ended":1`) {
			t.Fatalf("end others = %d %s, want one ended", res.status, res.body)
		}
		if res := s.get(t, "/v1/auth/me", c.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("session c after ending the others = %d, want 401", res.status)
		}
		if res := s.get(t, "/v1/auth/me", a.AccessToken); res.status != http.StatusOK {
			t.Errorf("the current session = %d, want 200", res.status)
		}
	})
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		a := s.login(t, email, goodPassword)
		b := s.login(t, email, goodPassword)
		newPassword := "a brand new passphrase 42"

		wrong := s.postJSON(t, "/v1/auth/password/change", jsonBody(t, map[string]string{"current_password": "not it at all!", "new_password": newPassword}), b.AccessToken)
		if wrong.status != http.StatusForbidden {
			t.Errorf("change with a wrong current password = %d, want 403", wrong.status)
		}
		res := s.postJSON(t, "/v1/auth/password/change", jsonBody(t, map[string]string{"current_password": goodPassword, "new_password": newPassword}), b.AccessToken)
		if res.status != http.StatusOK {
			t.Fatalf("change = %d %s", res.status, res.body)
		}

		if res := s.get(t, "/v1/auth/me", a.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("session A after a change in B = %d, want 401", res.status)
		}
		if res := s.get(t, "/v1/auth/me", b.AccessToken); res.status != http.StatusOK {
			t.Errorf("session B after its own change = %d, want 200", res.status)
		}
		s.login(t, email, newPassword)
	})
}

func TestPasswordReset(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		session := s.login(t, email, goodPassword)

		for _, address := range []string{email, "ghost-" + randomID(t) + "@example.com"} {
			if res := s.postJSON(t, "/v1/auth/password/forgot", jsonBody(t, map[string]string{"email": address}), ""); res.status != http.StatusAccepted {
				t.Errorf("forgot for %s = %d, want 202", address, res.status)
			}
		}
		link := s.outbox.lastLink(t, email)
		if !strings.Contains(link, "/v1/auth/password/reset?token=") {
			t.Fatalf("reset link = %s", link)
		}
		form := s.get(t, pathOf(t, link), "")
		if form.status != http.StatusOK || !strings.Contains(form.String(), `name="token" value="`+tokenOf(t, link)+`"`) {
			t.Errorf("reset form = %d %s", form.status, form.body)
		}

		newPassword := "reset to this passphrase"
		reset := func() response {
			return s.postJSON(t, "/v1/auth/password/reset", jsonBody(t, map[string]string{"token": tokenOf(t, link), "password": newPassword}), "")
		}
		if res := reset(); res.status != http.StatusOK {
			t.Fatalf("reset = %d %s", res.status, res.body)
		}
		if res := reset(); res.status != http.StatusBadRequest {
			t.Errorf("second reset with the token = %d, want 400", res.status)
		}
		if res := s.get(t, "/v1/auth/me", session.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("session after a reset = %d, want 401", res.status)
		}
		s.login(t, email, newPassword)
	})
}

func TestProfileAndDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		pair := s.login(t, email, goodPassword)

		res := s.do(t, "PATCH", "/v1/auth/me", `{"display_name": "  Grace  "}`, "Content-Type", "application/json", "Authorization", "Bearer "+pair.AccessToken)
		if res.status != http.StatusOK || !strings.Contains(res.String(), `"display_name":"Grace"`) {
			t.Errorf("PATCH /me = %d %s", res.status, res.body)
		}

		wrong := s.do(t, "DELETE", "/v1/auth/me", `{"password": "not my password"}`, "Content-Type", "application/json", "Authorization", "Bearer "+pair.AccessToken)
		if wrong.status != http.StatusForbidden {
			t.Errorf("DELETE /me with a wrong password = %d, want 403", wrong.status)
		}
		deleted := s.do(t, "DELETE", "/v1/auth/me", jsonBody(t, map[string]string{"password": goodPassword}), "Content-Type", "application/json", "Authorization", "Bearer "+pair.AccessToken)
		if deleted.status != http.StatusOK {
			t.Fatalf("DELETE /me = %d %s", deleted.status, deleted.body)
		}

		if res := s.get(t, "/v1/auth/me", pair.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("/me after deletion = %d, want 401", res.status)
		}
		for _, table := range []string{"users", "sessions", "refresh_tokens", "email_tokens"} {
			var rows int
			query := "SELECT COUNT(*) FROM " + table
			if err := s.app.DB().QueryRowContext(context.Background(), query).Scan(&rows); err != nil {
				t.Fatalf("count %s: %v", table, err)
			}
			if rows != 0 {
				t.Errorf("%s has %d rows after the only account was deleted", table, rows)
			}
		}
	})
}

func TestAdminRoutes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		operatorEmail := s.registerVerified(t)
		targetEmail := s.registerVerified(t)
		target := s.login(t, targetEmail, goodPassword)

		operator := s.login(t, operatorEmail, goodPassword)
		if res := s.get(t, "/v1/admin/users?email="+targetEmail, operator.AccessToken); res.status != http.StatusForbidden {
			t.Fatalf("admin route without the role = %d, want 403", res.status)
		}
		admin := auth.NewAdmin(s.app.DB(), clock.System{}, nil)
		if err := admin.Grant(context.Background(), operatorEmail, "admin"); err != nil {
			t.Fatalf("grant: %v", err)
		}

		var found auth.UserInfo
		s.get(t, "/v1/admin/users?email="+targetEmail, operator.AccessToken).data(t, &found)
		if found.Email != targetEmail {
			t.Fatalf("found = %+v", found)
		}

		if res := s.postJSON(t, "/v1/admin/users/"+found.ID+"/lock", "", operator.AccessToken); res.status != http.StatusOK {
			t.Fatalf("lock = %d %s", res.status, res.body)
		}
		if res := s.get(t, "/v1/auth/me", target.AccessToken); res.status != http.StatusUnauthorized {
			t.Errorf("locked user's session = %d, want 401", res.status)
		}
		res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": targetEmail, "password": goodPassword}), "")
		if res.status != http.StatusLocked {
			t.Errorf("login of a locked account = %d, want 423", res.status)
		}

		if res := s.postJSON(t, "/v1/admin/users/"+found.ID+"/unlock", "", operator.AccessToken); res.status != http.StatusOK {
			t.Fatalf("unlock = %d %s", res.status, res.body)
		}
		s.login(t, targetEmail, goodPassword)

		// Unlock also lifts the lock that failed sign-in attempts put on the address.
		for i := 0; i < 6; i++ {
			s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": targetEmail, "password": "wrong guess number " + string(rune('a'+i))}), "")
		}
		if res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": targetEmail, "password": goodPassword}), ""); res.status != http.StatusLocked {
			t.Fatalf("login after six wrong guesses = %d, want 423", res.status)
		}
		if res := s.postJSON(t, "/v1/admin/users/"+found.ID+"/unlock", "", operator.AccessToken); res.status != http.StatusOK {
			t.Fatalf("unlock = %d %s", res.status, res.body)
		}
		s.login(t, targetEmail, goodPassword)

		if res := s.postJSON(t, "/v1/admin/users/usr_nobody/verify", "", operator.AccessToken); res.status != http.StatusNotFound {
			t.Errorf("verify of an unknown id = %d, want 404", res.status)
		}
		if res := s.do(t, "DELETE", "/v1/admin/users/"+found.ID, "", "Authorization", "Bearer "+operator.AccessToken); res.status != http.StatusOK {
			t.Fatalf("delete = %d %s", res.status, res.body)
		}
		if _, err := admin.FindByEmail(context.Background(), targetEmail); err != auth.ErrUserNotFound {
			t.Errorf("find after delete: %v, want ErrUserNotFound", err)
		}
	})
}
