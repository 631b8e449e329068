package auth

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/edge"
)

// The verification page of the device flow: a user signs in, enters or
// confirms the code shown on the device, reviews the client and the access
// it requests, and approves or denies. It is plain HTML forms, so it works
// without JavaScript. Every form post carries a CSRF token that must equal
// the page's cookie (double submit), and both cookies are SameSite=Strict.

const (
	devicePagePath  = "/v1/auth/device"
	csrfCookie      = "nexus_device_csrf"
	loginCookie     = "nexus_device_login"
	csrfCookieTTL   = time.Hour
	pageLoginTTL    = 15 * time.Minute
	pageLoginPrefix = "auth:device-login:"
	wrongCodePrefix = "auth:device-wrong-code:"
)

// Views of the verification page.
const (
	viewSignIn  = "signin"
	viewEnter   = "enter"
	viewConfirm = "confirm"
	viewDone    = "done"
)

// devicePage is the data of the page template.
type devicePage struct {
	View     string
	CSRF     string
	UserCode string
	Client   string
	Scope    string
	Email    string
	Error    string
	Title    string
	Text     string
}

var devicePageTemplate = template.Must(template.New("device").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{if .Title}}{{.Title}}{{else}}Connect a device{{end}} · Nexus</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
{{- if eq .View "signin"}}
<h1>Sign in to connect a device</h1>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/v1/auth/device/signin">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<p><label>Email<br><input type="email" name="email" id="email" value="{{.Email}}" required autocomplete="username"></label></p>
<p><label>Password<br><input type="password" name="password" id="password" required autocomplete="current-password"></label></p>
<p><button type="submit" id="signin">Sign in</button></p>
</form>
{{- else if eq .View "enter"}}
<h1>Connect a device</h1>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
<p>Enter the code that your device shows.</p>
<form method="get" action="/v1/auth/device">
<p><label>Code<br><input type="text" name="user_code" id="user_code" value="{{.UserCode}}" required autocomplete="off"
 autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX" maxlength="16"></label></p>
<p><button type="submit" id="continue">Continue</button></p>
</form>
{{- else if eq .View "confirm"}}
<h1>Connect {{.Client}}?</h1>
<p><strong>{{.Client}}</strong> requests access to your Nexus account{{if .Scope}} with the scope <code>{{.Scope}}</code>{{else}}: it can do what you can do through the API{{end}}.</p>
<p>Check that your device shows this code: <strong id="shown_code">{{.UserCode}}</strong></p>
<form method="post" action="/v1/auth/device/approve">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<p><button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button></p>
</form>
{{- else}}
<h1 id="result">{{.Title}}</h1><p>{{.Text}}</p>
{{- end}}
</body></html>
`))

// writeDevicePage renders the page with headers that keep it out of
// caches and frames.
func writeDevicePage(r *edge.Request, status int, page devicePage) error {
	var body bytes.Buffer
	if err := devicePageTemplate.Execute(&body, page); err != nil {
		return fmt.Errorf("render device page: %w", err)
	}
	header := &r.Ctx.Response.Header
	header.Set("Cache-Control", "no-store")
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("X-Frame-Options", "DENY")
	header.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	r.Raw(status, "text/html; charset=utf-8", body.Bytes())
	return nil
}

// devicePageView serves GET /v1/auth/device.
func (m *Module) devicePageView(r *edge.Request) error {
	csrf, err := m.csrfToken(r)
	if err != nil {
		return err
	}
	input := strings.TrimSpace(string(r.Ctx.QueryArgs().Peek("user_code")))

	userID, err := m.pageUser(r)
	if err != nil {
		return err
	}
	if userID == "" {
		return writeDevicePage(r, http.StatusOK, devicePage{View: viewSignIn, CSRF: csrf, UserCode: input})
	}
	if input == "" {
		return writeDevicePage(r, http.StatusOK, devicePage{View: viewEnter, CSRF: csrf})
	}
	return m.confirmPage(r, csrf, input)
}

// confirmPage shows the request behind a user code, or the code form
// again with an error when the code is unknown.
func (m *Module) confirmPage(r *edge.Request, csrf, input string) error {
	req, status, message, err := m.pendingRequest(r, input)
	if err != nil {
		return err
	}
	if message != "" {
		return writeDevicePage(r, status, devicePage{View: viewEnter, CSRF: csrf, UserCode: input, Error: message})
	}
	client := m.opts.Clients[req.ClientID]
	return writeDevicePage(r, http.StatusOK, devicePage{
		View: viewConfirm, CSRF: csrf, UserCode: formatUserCode(req.UserCode), Client: client.Name, Scope: req.Scope,
	})
}

// pendingRequest finds the pending request of a user code. An unknown,
// expired or decided code returns a message for the page and counts
// against the IP's allowance of wrong codes, which bounds guessing.
func (m *Module) pendingRequest(r *edge.Request, input string) (deviceRequest, int, string, error) {
	ctx := r.Context()
	key := wrongCodePrefix + r.ClientIP()
	if wrong, found, err := m.host.KV.Get(ctx, key); err != nil {
		return deviceRequest{}, 0, "", fmt.Errorf("read wrong user codes: %w", err)
	} else if count, _ := strconv.ParseInt(string(wrong), 10, 64); found && count >= int64(m.opts.Device.MaxWrongCodes) {
		return deviceRequest{}, http.StatusTooManyRequests, "Too many wrong codes were entered from your network. Try again later.", nil
	}

	code, ok := normalizeUserCode(input)
	var req deviceRequest
	var err error
	if ok {
		req, err = m.store.deviceRequestByUserCode(ctx, code)
		if err != nil && !errors.Is(err, errNotFound) {
			return deviceRequest{}, 0, "", err
		}
	}
	if !ok || err != nil || req.Status != deviceStatusPending || !m.now().Before(req.ExpiresAt) {
		if _, err := m.host.KV.IncrBy(ctx, key, 1, m.opts.Device.WrongCodeWindow); err != nil {
			return deviceRequest{}, 0, "", fmt.Errorf("count wrong user codes: %w", err)
		}
		r.Logger().Info("wrong user code entered on the device page")
		return deviceRequest{}, http.StatusBadRequest, "That code is not valid, was already used, or has expired. Check the code on your device.", nil
	}
	return req, 0, "", nil
}

// deviceSignIn serves POST /v1/auth/device/signin: the page's sign-in,
// which counts against the same per-address lockout as POST /login.
func (m *Module) deviceSignIn(r *edge.Request) error {
	csrf, ok := m.checkCSRF(r)
	if !ok {
		return writeDevicePage(r, http.StatusForbidden, devicePage{View: viewDone, Title: "Form expired",
			Text: "This form expired or did not come from this page. Open the device page again."})
	}
	args := r.Ctx.PostArgs()
	input := string(args.Peek("user_code"))
	rawEmail := string(args.Peek("email"))
	page := devicePage{View: viewSignIn, CSRF: csrf, UserCode: input, Email: rawEmail}

	email, err := normalizeEmail(rawEmail)
	if err != nil {
		page.Error = "Enter a valid email address."
		return writeDevicePage(r, http.StatusBadRequest, page)
	}
	u, err := m.authenticate(r, email, string(args.Peek("password")))
	var apiErr *edge.Error
	if errors.As(err, &apiErr) {
		page.Error = pageMessage(apiErr)
		return writeDevicePage(r, apiErr.Status, page)
	}
	if err != nil {
		return err
	}

	token, hash, err := randomToken(32)
	if err != nil {
		return err
	}
	if err := m.host.KV.Set(r.Context(), pageLoginPrefix+hash, []byte(u.ID), pageLoginTTL); err != nil {
		return fmt.Errorf("store device page sign-in: %w", err)
	}
	m.setCookie(r, loginCookie, token, pageLoginTTL)
	r.Logger().Info("signed in on the device page", slog.String("user_id", u.ID))

	location := devicePagePath
	if input != "" {
		location += "?user_code=" + url.QueryEscape(input)
	}
	r.Ctx.Response.Header.Set("Location", location)
	r.Raw(http.StatusSeeOther, "text/plain; charset=utf-8", nil)
	return nil
}

// deviceApprove serves POST /v1/auth/device/approve with the decision
// approve or deny.
func (m *Module) deviceApprove(r *edge.Request) error {
	csrf, ok := m.checkCSRF(r)
	if !ok {
		return writeDevicePage(r, http.StatusForbidden, devicePage{View: viewDone, Title: "Form expired",
			Text: "This form expired or did not come from this page. Open the device page again."})
	}
	userID, err := m.pageUser(r)
	if err != nil {
		return err
	}
	args := r.Ctx.PostArgs()
	input := string(args.Peek("user_code"))
	if userID == "" {
		return writeDevicePage(r, http.StatusUnauthorized, devicePage{View: viewSignIn, CSRF: csrf, UserCode: input,
			Error: "Your sign-in on this page expired. Sign in again."})
	}
	decision := string(args.Peek("decision"))
	if decision != "approve" && decision != "deny" {
		return writeDevicePage(r, http.StatusBadRequest, devicePage{View: viewEnter, CSRF: csrf, UserCode: input,
			Error: "Choose Approve or Deny."})
	}

	req, status, message, err := m.pendingRequest(r, input)
	if err != nil {
		return err
	}
	if message != "" {
		return writeDevicePage(r, status, devicePage{View: viewEnter, CSRF: csrf, UserCode: input, Error: message})
	}
	newStatus := deviceStatusApproved
	if decision == "deny" {
		newStatus = deviceStatusDenied
	}
	decided, err := m.store.decideDeviceRequest(r.Context(), req.UserCode, userID, newStatus, m.now())
	if err != nil {
		return err
	}
	if !decided {
		return writeDevicePage(r, http.StatusConflict, devicePage{View: viewEnter, CSRF: csrf, UserCode: input,
			Error: "That code was decided a moment ago or has just expired."})
	}

	r.Logger().Info("device request decided", slog.String("user_id", userID),
		slog.String("client_id", req.ClientID), slog.String("decision", decision))
	client := m.opts.Clients[req.ClientID].Name
	if decision == "deny" {
		return writeDevicePage(r, http.StatusOK, devicePage{View: viewDone, Title: "Request denied",
			Text: client + " was not connected to your account. You can close this page."})
	}
	return writeDevicePage(r, http.StatusOK, devicePage{View: viewDone, Title: "Device connected",
		Text: client + " is now signed in to your account. You can close this page and return to your device."})
}

// pageMessage turns a sign-in error into a sentence for the page.
func pageMessage(err *edge.Error) string {
	switch err.Code {
	case "UNAUTHORIZED":
		return "The email or password is wrong."
	case "ACCOUNT_LOCKED":
		return "This account is locked for now after too many attempts. Try again later."
	case "EMAIL_UNVERIFIED":
		return "Verify your email address first: open the link in the mail we sent you."
	default:
		return err.Message
	}
}

// pageUser returns the id of the user signed in on the page, or "" when
// no user is signed in.
func (m *Module) pageUser(r *edge.Request) (string, error) {
	token := r.Ctx.Request.Header.Cookie(loginCookie)
	if len(token) == 0 {
		return "", nil
	}
	userID, found, err := m.host.KV.Get(r.Context(), pageLoginPrefix+hashToken(string(token)))
	if err != nil {
		return "", fmt.Errorf("read device page sign-in: %w", err)
	}
	if !found {
		return "", nil
	}
	return string(userID), nil
}

// csrfToken returns the page's CSRF cookie, setting a new one when the
// browser has none.
func (m *Module) csrfToken(r *edge.Request) (string, error) {
	if existing := r.Ctx.Request.Header.Cookie(csrfCookie); len(existing) >= 32 {
		return string(existing), nil
	}
	token, _, err := randomToken(32)
	if err != nil {
		return "", err
	}
	m.setCookie(r, csrfCookie, token, csrfCookieTTL)
	return token, nil
}

// checkCSRF compares the form's csrf field with the cookie and returns the
// token for the next form.
func (m *Module) checkCSRF(r *edge.Request) (string, bool) {
	cookie := r.Ctx.Request.Header.Cookie(csrfCookie)
	field := r.Ctx.PostArgs().Peek("csrf")
	if len(cookie) < 32 || subtle.ConstantTimeCompare(cookie, field) != 1 {
		r.Logger().Warn("device page form rejected: CSRF token missing or wrong")
		return "", false
	}
	return string(cookie), true
}

func (m *Module) setCookie(r *edge.Request, name, value string, ttl time.Duration) {
	var cookie fasthttp.Cookie
	cookie.SetKey(name)
	cookie.SetValue(value)
	cookie.SetPath(devicePagePath)
	cookie.SetMaxAge(int(ttl / time.Second))
	cookie.SetHTTPOnly(true)
	cookie.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	cookie.SetSecure(strings.HasPrefix(m.opts.PublicURL, "https://"))
	r.Ctx.Response.Header.SetCookie(&cookie)
}
