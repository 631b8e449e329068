package openapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nexus-suite/nexus/edge/openapi"
)

var (
	htmlType = []string{"Content-Type", "text/html; charset=utf-8"}
	ipLimit  = []string{
		"RateLimit-Policy", "20;w=60;burst=20",
		"RateLimit", "limit=20, remaining=19, reset=3",
		"X-RateLimit-Limit", "20",
		"X-RateLimit-Remaining", "19",
		"X-RateLimit-Reset", "1796414803",
	}
	invalidToken = []string{"WWW-Authenticate", `Bearer error="invalid_token"`}
)

const (
	userJSON = `{"id":"usr_0123456789abcdef0123456789abcdef","email":"ada@example.com","display_name":"Ada",` +
		`"email_verified":true,"role":"user","created_at":"2026-12-04T20:47:05.123456789Z"}`
	pairJSON = `"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",` +
		`"refresh_token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","token_type":"Bearer","expires_in":900,` +
		`"session_id":"ses_0123456789abcdef0123456789abcdef"`
	loginBody  = `{"data":{` + pairJSON + `,"user":` + userJSON + `}}`
	lockedBody = `{"error":{"code":"ACCOUNT_LOCKED","message":"too many failed sign-in attempts; try again later",` +
		`"details":{"locked_until":"2026-12-04T21:02:05Z","retry_after":900}}}`
	userInfoJSON = `{"id":"usr_1","email":"ada@example.com","display_name":"","role":"admin",` +
		`"email_verified":false,"locked_until":null,"created_at":"2026-12-04T20:47:05Z"}`
)

func TestValidatorAcceptsAuth(t *testing.T) {
	validator, err := openapi.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}

	tests := []struct {
		name   string
		method string
		uri    string
		status int
		header http.Header
		body   string
	}{
		{"register", "POST", "/v1/auth/register", 201, header(concat(jsonType, requestID, ipLimit)...), `{"data":` + userJSON + `}`},
		{"register without IP limit", "POST", "/v1/auth/register", 201, header(concat(jsonType, requestID)...), `{"data":` + userJSON + `}`},
		{"password policy", "POST", "/v1/auth/register", 400, header(concat(jsonType, requestID, ipLimit)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"password must be at least 12 characters",` +
				`"details":{"field":"password","reason":"too_short","min_length":12,"max_length":1024}}}`},
		{"malformed JSON", "POST", "/v1/auth/login", 400, header(concat(jsonType, requestID)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"request body is not valid JSON","details":{"field":"body","offset":3}}}`},
		{"used token", "POST", "/v1/auth/verify-email", 400, header(concat(jsonType, requestID)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"token is used","details":{"field":"token","reason":"used"}}}`},
		{"verification form", "GET", "/v1/auth/verify-email?token=abc", 200,
			header(concat(htmlType, requestID, []string{"Cache-Control", "no-store", "Referrer-Policy", "no-referrer"})...), "<form></form>"},
		{"verification form posted", "POST", "/v1/auth/verify-email", 200, header(concat(htmlType, requestID)...), "<!doctype html><p>Email verified</p>"},
		{"failed verification page", "POST", "/v1/auth/verify-email", 400, header(concat(htmlType, requestID)...), "<!doctype html><p>Verification failed</p>"},
		{"resend", "POST", "/v1/auth/verify-email/resend", 202, header(concat(jsonType, requestID)...), `{"data":{"status":"accepted"}}`},
		{"login", "POST", "/v1/auth/login", 200, header(concat(jsonType, requestID, ipLimit)...), loginBody},
		{"wrong credentials", "POST", "/v1/auth/login", 401, header(concat(jsonType, requestID)...),
			`{"error":{"code":"UNAUTHORIZED","message":"email or password is wrong"}}`},
		{"unverified", "POST", "/v1/auth/login", 403, header(concat(jsonType, requestID)...),
			`{"error":{"code":"EMAIL_UNVERIFIED","message":"verify your email address before signing in"}}`},
		{"locked", "POST", "/v1/auth/login", 423, header(concat(jsonType, requestID, []string{"Retry-After", "900"})...), lockedBody},
		{"refresh", "POST", "/v1/auth/refresh", 200, header(concat(jsonType, requestID)...), `{"data":{` + pairJSON + `}}`},
		{"refresh rejected", "POST", "/v1/auth/refresh", 401, header(concat(jsonType, requestID, invalidToken)...),
			`{"error":{"code":"UNAUTHORIZED","message":"refresh token is invalid, expired or its session ended"}}`},
		{"reset form", "GET", "/v1/auth/password/reset?token=abc", 200,
			header(concat(htmlType, requestID, []string{"Cache-Control", "no-store", "Referrer-Policy", "no-referrer"})...), "<form></form>"},
		{"reset as JSON", "POST", "/v1/auth/password/reset", 200, header(concat(jsonType, requestID)...), `{"data":{"password_changed":true}}`},
		{"reset from the form", "POST", "/v1/auth/password/reset", 200, header(concat(htmlType, requestID)...), "<p>Password changed</p>"},
		{"reset rejected from the form", "POST", "/v1/auth/password/reset", 400, header(concat(htmlType, requestID)...), "<p>Password not changed</p>"},
		{"logout", "POST", "/v1/auth/logout", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":{"session_id":"ses_1","ended":true}}`},
		{"sessions", "GET", "/v1/auth/sessions", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":[{"id":"ses_1","device_name":"","ip":"::1","created_at":"2026-12-04T20:47:05Z",` +
				`"last_seen_at":"2026-12-04T20:47:05Z","expires_at":"2027-01-03T20:47:05Z","current":true}]}`},
		{"end other sessions", "DELETE", "/v1/auth/sessions", 200, header(concat(jsonType, requestID, userLimit)...), `{"data":{"ended":2}}`},
		{"unknown session", "DELETE", "/v1/auth/sessions/ses_2", 404, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"NOT_FOUND","message":"no live session with this id"}}`},
		{"session route of a disabled module", "DELETE", "/v1/auth/sessions/ses_2", 404, header(concat(jsonType, requestID)...),
			`{"error":{"code":"NOT_FOUND","message":"module auth is disabled","details":{"module":"auth"}}}`},
		{"wrong current password", "POST", "/v1/auth/password/change", 403, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"FORBIDDEN","message":"the current password is wrong","details":{"field":"current_password"}}}`},
		{"profile", "PATCH", "/v1/auth/me", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":` + strings.TrimSuffix(userJSON, "}") + `,"has_password":true,"identities":[]}}`},
		{"account deleted", "DELETE", "/v1/auth/me", 200, header(concat(jsonType, requestID, userLimit)...), `{"data":{"id":"usr_1","deleted":true}}`},
		{"find user", "GET", "/v1/admin/users?email=ada@example.com", 200, header(concat(jsonType, requestID, userLimit)...), `{"data":` + userInfoJSON + `}`},
		{"lock", "POST", "/v1/admin/users/usr_1/lock", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":` + strings.Replace(userInfoJSON, `null`, `"9999-12-31T00:00:00Z"`, 1) + `}`},
		{"not an operator", "POST", "/v1/admin/users/usr_1/verify", 403, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"FORBIDDEN","message":"this route is for operators with the admin role"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validator.Check(tt.method, tt.uri, tt.status, tt.header, []byte(tt.body)); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestValidatorRejectsAuth holds the auth operations to the shapes that
// clients rely on.
func TestValidatorRejectsAuth(t *testing.T) {
	validator, err := openapi.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}

	tests := []struct {
		name   string
		reason string
		method string
		uri    string
		status int
		header http.Header
		body   string
	}{
		{"login without user", `missing property 'user'`, "POST", "/v1/auth/login", 200, header(concat(jsonType, requestID)...),
			`{"data":{` + pairJSON + `}}`},
		{"refresh with user", `additional properties 'user' not allowed`, "POST", "/v1/auth/refresh", 200, header(concat(jsonType, requestID)...), loginBody},
		{"refresh 401 without challenge", `"WWW-Authenticate" missing`, "POST", "/v1/auth/refresh", 401, header(concat(jsonType, requestID)...),
			`{"error":{"code":"UNAUTHORIZED","message":"refresh token is invalid"}}`},
		{"423 without Retry-After", `"Retry-After" missing`, "POST", "/v1/auth/login", 423, header(concat(jsonType, requestID)...), lockedBody},
		{"423 without locked_until", `missing property 'locked_until'`, "POST", "/v1/auth/login", 423, header(concat(jsonType, requestID, []string{"Retry-After", "900"})...),
			`{"error":{"code":"ACCOUNT_LOCKED","message":"locked","details":{"retry_after":900}}}`},
		{"unknown token reason", `value must be one of 'invalid', 'used', 'expired'`, "POST", "/v1/auth/verify-email", 400, header(concat(jsonType, requestID)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"password too short","details":{"field":"token","reason":"too_short"}}}`},
		{"400 without field", `missing property 'field'`, "POST", "/v1/auth/register", 400, header(concat(jsonType, requestID)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"token is used","details":{"reason":"used"}}}`},
		{"verification form as JSON", `Content-Type`, "GET", "/v1/auth/verify-email?token=abc", 200,
			header(concat(jsonType, requestID, []string{"Cache-Control", "no-store", "Referrer-Policy", "no-referrer"})...), `{"data":{}}`},
		{"reset form without no-store", `"Cache-Control" missing`, "GET", "/v1/auth/password/reset", 200,
			header(concat(htmlType, requestID, []string{"Referrer-Policy", "no-referrer"})...), "<form></form>"},
		{"authenticated 200 without rate-limit headers", `"RateLimit" missing`, "GET", "/v1/auth/me", 200, header(concat(jsonType, requestID)...), `{"data":` + userJSON + `}`},
		{"unknown role", `"/data/role"`, "GET", "/v1/auth/me", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":` + strings.Replace(userJSON, `"user"`, `"root"`, 1) + `}`},
		{"wrong password with another code", `value must be 'FORBIDDEN'`, "DELETE", "/v1/auth/me", 403, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"UNAUTHORIZED","message":"the current password is wrong","details":{"field":"password"}}}`},
		{"admin 404 with another code", `value must be 'NOT_FOUND'`, "DELETE", "/v1/admin/users/usr_1", 404, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"FORBIDDEN","message":"no user with this id"}}`},
		{"undocumented conflict", `status is not supported`, "POST", "/v1/auth/login", 409, header(concat(jsonType, requestID)...),
			`{"error":{"code":"CONFLICT","message":"conflict"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validator.Check(tt.method, tt.uri, tt.status, tt.header, []byte(tt.body))
			if err == nil {
				t.Fatalf("Check returned nil, want an error about %s", tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Check error does not mention %s: %v", tt.reason, err)
			}
		})
	}
}
