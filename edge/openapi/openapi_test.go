package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"github.com/nexus-suite/nexus/edge/openapi"
)

func TestYAMLParses(t *testing.T) {
	var tree map[string]any
	if err := yaml.Unmarshal(openapi.YAML(), &tree); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if tree["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", tree["openapi"])
	}
}

func TestJSONEqualsYAML(t *testing.T) {
	document := openapi.JSON()
	if !json.Valid(document) {
		t.Fatal("JSON() is not valid JSON")
	}

	var fromJSON, fromYAML any
	if err := json.Unmarshal(document, &fromJSON); err != nil {
		t.Fatalf("decode JSON(): %v", err)
	}
	if err := yaml.Unmarshal(openapi.YAML(), &fromYAML); err != nil {
		t.Fatalf("parse YAML(): %v", err)
	}
	// A JSON round trip gives the YAML tree the types that JSON decoding
	// produces (float64 numbers), so the two trees compare equal.
	roundTrip, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatalf("encode YAML tree: %v", err)
	}
	if err := json.Unmarshal(roundTrip, &fromYAML); err != nil {
		t.Fatalf("decode YAML tree: %v", err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Error("JSON() differs from the YAML document")
	}
}

func TestDocumentValidates(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("document version %q is not 3.1", doc.OpenAPI)
	}
	// Validate turns on the JSON Schema 2020-12 rules for a 3.1 document by
	// itself. The options also check examples and defaults against their schemas.
	err = doc.Validate(context.Background(),
		openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation())
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestOperationsComplete(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	for path, item := range doc.Paths.Map() {
		for method, operation := range item.Operations() {
			name := method + " " + path
			if operation.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			}
			if operation.Summary == "" {
				t.Errorf("%s has no summary", name)
			}
			if operation.Responses.Status(http.StatusInternalServerError) == nil {
				t.Errorf("%s has no 500 response", name)
			}
			if operation.Responses.Status(http.StatusRequestEntityTooLarge) == nil {
				t.Errorf("%s has no 413 response", name)
			}
		}
	}
}

// TestOperationErrors checks that each operation lists the errors its route
// flags lead to: 401 and 429 for bearer-authenticated operations, 404 for
// module operations, and X-Request-Id on every response.
func TestOperationErrors(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	for path, item := range doc.Paths.Map() {
		for method, operation := range item.Operations() {
			name := method + " " + path
			authenticated := operation.Security != nil && len(*operation.Security) > 0
			system := len(operation.Tags) == 1 && operation.Tags[0] == "system"

			if authenticated && operation.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s needs a bearer token but lists no 401", name)
			}
			if authenticated && operation.Responses.Status(http.StatusTooManyRequests) == nil {
				t.Errorf("%s needs a bearer token but lists no 429", name)
			}
			if !system && operation.Responses.Status(http.StatusNotFound) == nil {
				t.Errorf("%s belongs to a module but lists no 404 for a disabled module", name)
			}
			for status, response := range operation.Responses.Map() {
				if response.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s response %s has no X-Request-Id header", name, status)
				}
			}
		}
	}
}

func TestSecurityScheme(t *testing.T) {
	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	scheme := doc.Components.SecuritySchemes["bearerAuth"]
	if scheme == nil || scheme.Value == nil {
		t.Fatal("components.securitySchemes.bearerAuth is missing")
	}
	if scheme.Value.Type != "http" {
		t.Errorf("bearerAuth type = %q, want http", scheme.Value.Type)
	}
	if scheme.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth scheme = %q, want bearer", scheme.Value.Scheme)
	}
	if scheme.Value.BearerFormat != "JWT" {
		t.Errorf("bearerAuth bearerFormat = %q, want JWT", scheme.Value.BearerFormat)
	}
	if !strings.Contains(scheme.Value.Description, "RS256") {
		t.Errorf("bearerAuth description %q does not name RS256", scheme.Value.Description)
	}
}

func TestRoutes(t *testing.T) {
	routes := openapi.Routes()

	want := openapi.Route{Method: "GET", Path: "/v1/entitlements/check"}
	found := false
	for _, route := range routes {
		if route == want {
			found = true
		}
	}
	if !found {
		t.Errorf("Routes() lacks %v: %v", want, routes)
	}

	doc, err := openapi.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	operations := 0
	for _, item := range doc.Paths.Map() {
		operations += len(item.Operations())
	}
	if len(routes) != operations {
		t.Errorf("Routes() has %d routes, the document %d operations", len(routes), operations)
	}
	for i := 1; i < len(routes); i++ {
		previous, current := routes[i-1], routes[i]
		if previous.Path > current.Path || (previous.Path == current.Path && previous.Method >= current.Method) {
			t.Errorf("Routes() is not sorted at %d: %v before %v", i, previous, current)
		}
	}
}

// header builds an http.Header from name and value pairs.
func header(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

var (
	jsonType  = []string{"Content-Type", "application/json"}
	requestID = []string{"X-Request-Id", "45b3f85908e8-1"}
	userLimit = []string{
		"RateLimit-Policy", "60;w=60;burst=60",
		"RateLimit", "limit=60, remaining=59, reset=1",
		"X-RateLimit-Limit", "60",
		"X-RateLimit-Remaining", "59",
		"X-RateLimit-Reset", "1796414801",
	}
)

func concat(lists ...[]string) []string {
	var all []string
	for _, list := range lists {
		all = append(all, list...)
	}
	return all
}

const (
	entitlementsBody = `{"data":{"tier":"core","tier_name":"Core","source":"default","features":[],` +
		`"limits":{"requests_per_minute":60,"burst":60,"sync_bytes":0,"sync_item_bytes":0,"sync_batch_items":0,` +
		`"skill_publishes_per_month":0,"mcp_servers":0}}}`
	checkBody = `{"data":{"feature":"sync","granted":false,"current_tier":"core","required_tier":"pro"}}`
)

func TestValidatorAccepts(t *testing.T) {
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
		{"health", "GET", "/health", 200, header(concat(jsonType, requestID)...), `{"data":{"status":"ok"}}`},
		{"ready unavailable", "GET", "/ready", 503, header(concat(jsonType, requestID)...),
			`{"data":{"status":"unavailable","checks":{"database":{"status":"fail","engine":"postgres","duration_ms":800,"error":"timed out after 800ms"},` +
				`"redis":{"status":"ok","engine":"redis","duration_ms":1}}}}`},
		{"metrics", "GET", "/metrics", 200,
			header("Content-Type", "text/plain; version=0.0.4; charset=utf-8", "X-Request-Id", "a"), "# HELP up\nup 1\n"},
		{"entitlements", "GET", "/v1/entitlements", 200, header(concat(jsonType, requestID, userLimit)...), entitlementsBody},
		{"check with query", "GET", "/v1/entitlements/check?feature=sync", 200,
			header(concat(jsonType, requestID, userLimit)...), checkBody},
		{"check null tier", "GET", "/v1/entitlements/check?feature=sync", 200, header(concat(jsonType, requestID, userLimit)...),
			`{"data":{"feature":"sync","granted":false,"current_tier":"core","required_tier":null}}`},
		{"tiers without IP limit", "GET", "/v1/entitlements/tiers", 200, header(concat(jsonType, requestID)...), `{"data":[]}`},
		{"missing token", "GET", "/v1/entitlements", 401, header(concat(jsonType, requestID, []string{"WWW-Authenticate", "Bearer"})...),
			`{"error":{"code":"UNAUTHORIZED","message":"missing or malformed bearer token in the Authorization header"}}`},
		{"module disabled", "GET", "/v1/auth/jwks", 404, header(concat(jsonType, requestID)...),
			`{"error":{"code":"NOT_FOUND","message":"module auth is disabled","details":{"module":"auth"}}}`},
		{"rate limited", "GET", "/v1/entitlements", 429, header(concat(jsonType, requestID, userLimit, []string{"Retry-After", "30"})...),
			`{"error":{"code":"RATE_LIMITED","message":"rate limit exceeded, retry after 30 seconds","details":{"retry_after":30}}}`},
		{"internal error", "GET", "/health", 500, header(concat(jsonType, requestID)...),
			`{"error":{"code":"INTERNAL_ERROR","message":"internal error","details":{"request_id":"45b3f85908e8-1"}}}`},
		{"unknown route", "GET", "/nope", 404, header(concat(jsonType, requestID)...),
			`{"error":{"code":"NOT_FOUND","message":"no route matches GET /nope"}}`},
		{"wrong method", "POST", "/health", 405, header(concat(jsonType, requestID, []string{"Allow", "GET"})...),
			`{"error":{"code":"VALIDATION_ERROR","message":"method POST is not allowed on this path, use GET","details":{"allowed":["GET"],"method":"POST"}}}`},
		{"body too large on unknown route", "POST", "/nope", 413, header(concat(jsonType, requestID)...),
			`{"error":{"code":"QUOTA_EXCEEDED","message":"request body exceeds the limit of 1048576 bytes","details":{"limit":1048576,"limit_type":"request_body_bytes"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validator.Check(tt.method, tt.uri, tt.status, tt.header, []byte(tt.body)); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestValidatorRejects holds the Validator to catching each kind of
// mismatch, so that a passing integration test means something.
func TestValidatorRejects(t *testing.T) {
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
		{"undocumented status", `status is not supported`, "GET", "/health", 418, header(concat(jsonType, requestID)...), `{"data":{"status":"ok"}}`},
		{"missing request id", `"X-Request-Id" missing`, "GET", "/health", 200, header(jsonType...), `{"data":{"status":"ok"}}`},
		{"wrong content type", `Content-Type`, "GET", "/health", 200, header("Content-Type", "text/html", "X-Request-Id", "a"), `{"data":{"status":"ok"}}`},
		{"body outside envelope", `missing property 'data'`, "GET", "/health", 200, header(concat(jsonType, requestID)...), `{"status":"ok"}`},
		{"wrong constant", `value must be 'ok'`, "GET", "/health", 200, header(concat(jsonType, requestID)...), `{"data":{"status":"up"}}`},
		{"extra field", `"extra"`, "GET", "/v1/entitlements/check", 200, header(concat(jsonType, requestID, userLimit)...),
			strings.Replace(checkBody, `"feature"`, `"extra":1,"feature"`, 1)},
		{"missing rate-limit headers", `missing`, "GET", "/v1/entitlements", 200, header(concat(jsonType, requestID)...), entitlementsBody},
		{"malformed rate-limit header", `does not match pattern`, "GET", "/v1/entitlements", 200,
			header(concat(jsonType, requestID, userLimit[:2], []string{"RateLimit", "60"}, userLimit[4:])...), entitlementsBody},
		{"429 without Retry-After", `"Retry-After" missing`, "GET", "/v1/entitlements", 429, header(concat(jsonType, requestID, userLimit)...),
			`{"error":{"code":"RATE_LIMITED","message":"rate limit exceeded","details":{"retry_after":30}}}`},
		{"401 without challenge", `"WWW-Authenticate" missing`, "GET", "/v1/entitlements", 401, header(concat(jsonType, requestID)...),
			`{"error":{"code":"UNAUTHORIZED","message":"missing token"}}`},
		{"401 with wrong code", `value must be 'UNAUTHORIZED'`, "GET", "/v1/entitlements", 401, header(concat(jsonType, requestID, []string{"WWW-Authenticate", "Bearer"})...),
			`{"error":{"code":"FORBIDDEN","message":"missing token"}}`},
		{"disabled module without details", `missing property 'details'`, "GET", "/v1/auth/jwks", 404, header(concat(jsonType, requestID)...),
			`{"error":{"code":"NOT_FOUND","message":"module auth is disabled"}}`},
		{"unknown error code", `value must be one of`, "GET", "/health", 500, header(concat(jsonType, requestID)...),
			`{"error":{"code":"BOOM","message":"internal error","details":{"request_id":"a"}}}`},
		{"unknown route answered 200", `status is not supported`, "GET", "/nope", 200, header(concat(jsonType, requestID)...), `{"data":{}}`},
		{"wrong method without Allow", `"Allow" missing`, "POST", "/health", 405, header(concat(jsonType, requestID)...),
			`{"error":{"code":"VALIDATION_ERROR","message":"method POST is not allowed","details":{"allowed":["GET"],"method":"POST"}}}`},
		{"wrong method answered 404", `status is not supported`, "POST", "/health", 404, header(concat(jsonType, requestID)...),
			`{"error":{"code":"NOT_FOUND","message":"no route matches POST /health"}}`},
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

func TestValidatorBadURI(t *testing.T) {
	validator, err := openapi.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	err = validator.Check("GET", "health", 200, header(concat(jsonType, requestID)...), []byte(`{"data":{"status":"ok"}}`))
	if err == nil {
		t.Error("Check accepted a request URI without a leading slash")
	}
}

func TestValidatorKeepsBody(t *testing.T) {
	validator, err := openapi.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	body := []byte(`{"data":{"status":"ok"}}`)
	original := bytes.Clone(body)

	if err := validator.Check("GET", "/health", 200, header(concat(jsonType, requestID)...), body); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !bytes.Equal(body, original) {
		t.Errorf("Check changed the body to %q", body)
	}
}
