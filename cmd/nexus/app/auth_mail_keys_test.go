package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/modules/auth/mail/mailtest"
)

// TestVerificationOverSMTP sends the verification mail through a real SMTP
// server with STARTTLS and authentication, reads it back and follows its link.
func TestVerificationOverSMTP(t *testing.T) {
	smtp := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("nexus", "smtp-secret-1"))
	s := startServer(t, serverOption{config: func(cfg *configs.Config) {
		cfg.Modules["auth"]["mail"] = map[string]any{
			"sender": "smtp",
			"from":   "Nexus <no-reply@example.com>",
			"smtp": map[string]any{
				"host": smtp.SMTPHost, "port": smtp.SMTPPort, "username": "nexus", "password": "smtp-secret-1",
				"security": "starttls", "root_ca_file": smtp.CAFile,
			},
		}
	}})

	email := "smtp-" + randomID(t) + "@example.com"
	res := s.do(t, "POST", "/v1/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "Content-Type", "application/json")
	if res.status != http.StatusCreated {
		t.Fatalf("register = %d %s", res.status, res.body)
	}

	message := smtp.WaitForMessage(t, email)
	if message.Username != "nexus" {
		t.Errorf("SMTP user = %q, want nexus", message.Username)
	}
	link := linkPattern.FindString(message.Text)
	if link == "" {
		t.Fatalf("message has no link: %q", message.Text)
	}
	page := followVerificationLink(t, s, link)
	if page.status != http.StatusOK || !strings.Contains(page.String(), "Email verified") {
		t.Fatalf("following the link = %d %s", page.status, page.body)
	}
	res = s.do(t, "POST", "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "Content-Type", "application/json")
	if res.status != http.StatusOK {
		t.Errorf("login after verification = %d %s", res.status, res.body)
	}
}

func TestPasswordRehashedWhenParametersRise(t *testing.T) {
	s := startAuthServer(t, engineSQLite)
	email := s.registerVerified(t)

	stored := func() string {
		var hash string
		if err := s.app.DB().QueryRowContext(context.Background(), "SELECT password_hash FROM users WHERE email = $1", email).Scan(&hash); err != nil {
			t.Fatalf("read hash: %v", err)
		}
		return hash
	}
	if !strings.Contains(stored(), "$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not record the default parameters", stored())
	}

	raised := *s.cfg
	raised.Modules = map[string]map[string]any{
		"auth":         {"enabled": true, "argon2": map[string]any{"memory_kib": 19456, "iterations": 3, "parallelism": 1}},
		"entitlements": {"enabled": true},
	}
	if err := s.app.Manager().Apply(context.Background(), &raised); err != nil {
		t.Fatalf("apply raised parameters: %v", err)
	}
	module, _ := s.app.Manager().Module("auth")
	module.(*auth.Module).SetMailer(s.outbox)

	s.login(t, email, goodPassword)
	if !strings.Contains(stored(), "$m=19456,t=3,p=1$") {
		t.Errorf("hash after login = %q, want it rehashed with t=3", stored())
	}
	s.login(t, email, goodPassword)
}

func TestKeyRotationWithLiveTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)
		before := s.login(t, email, goodPassword)
		oldKID := decodeJWTHeader(t, before.AccessToken)["kid"]

		overlap := s.cfg.Tokens.AccessTTL + s.cfg.Tokens.Leeway
		newKID, err := s.app.Keys().Rotate(context.Background(), 0, overlap)
		if err != nil {
			t.Fatalf("rotate: %v", err)
		}
		if newKID == oldKID {
			t.Fatal("rotation kept the kid")
		}

		if res := s.get(t, "/v1/auth/me", before.AccessToken); res.status != http.StatusOK {
			t.Errorf("token of the old key after rotation = %d, want 200", res.status)
		}
		jwks := s.get(t, "/.well-known/jwks.json", "").String()
		if !strings.Contains(jwks, newKID) || !strings.Contains(jwks, oldKID.(string)) {
			t.Errorf("JWKS %s lacks one of the keys", jwks)
		}

		after := s.login(t, email, goodPassword)
		if kid := decodeJWTHeader(t, after.AccessToken)["kid"]; kid != newKID {
			t.Errorf("new token kid = %v, want %s", kid, newKID)
		}
		if res := s.get(t, "/v1/auth/me", after.AccessToken); res.status != http.StatusOK {
			t.Errorf("token of the new key = %d, want 200", res.status)
		}
		var refreshed tokens
		s.refresh(t, before.RefreshToken).data(t, &refreshed)
		if kid := decodeJWTHeader(t, refreshed.AccessToken)["kid"]; kid != newKID {
			t.Errorf("refreshed token kid = %v, want %s", kid, newKID)
		}
	})
}
