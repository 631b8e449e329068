package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/modules/auth/mail"
	"github.com/nexus-suite/nexus/modules/auth/password"
)

// Limits on account fields.
const (
	maxEmailBytes       = 254
	maxDisplayNameRunes = 100
	emailTokenBytes     = 32
)

// userView is a user as the API shows it.
type userView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	DisplayName   string    `json:"display_name"`
	EmailVerified bool      `json:"email_verified"`
	Role          string    `json:"role"`
	CreatedAt     time.Time `json:"created_at"`
}

// profileView is GET /v1/auth/me: the user with the ways they sign in.
type profileView struct {
	userView
	HasPassword bool           `json:"has_password"`
	Identities  []identityView `json:"identities"`
}

func viewOf(u user) userView {
	return userView{
		ID: u.ID, Email: u.Email, DisplayName: u.DisplayName,
		EmailVerified: u.EmailVerifiedAt != nil, Role: u.Role, CreatedAt: u.CreatedAt,
	}
}

// normalizeEmail trims the address and lower-cases its domain, and
// rejects anything that is not a single bare address.
func normalizeEmail(raw string) (string, error) {
	email := strings.TrimSpace(raw)
	at := strings.LastIndexByte(email, '@')
	if email == "" || len(email) > maxEmailBytes || at <= 0 || at == len(email)-1 || !utf8.ValidString(email) {
		return "", errors.New("invalid email address")
	}
	email = email[:at] + "@" + strings.ToLower(email[at+1:])

	parsed, err := netmail.ParseAddress(email)
	if err != nil || parsed.Address != email || parsed.Name != "" || !strings.Contains(email[at+1:], ".") {
		return "", errors.New("invalid email address")
	}
	return email, nil
}

func invalidEmail() *edge.Error {
	return edge.Validation("email", "email must be a valid address such as name@example.com")
}

// checkPassword applies the password policy. A password holding U+FFFD is
// rejected as invalid UTF-8 too, because the JSON decoder puts that
// character in place of an escaped lone surrogate such as \ud800.
func checkPassword(field, plain string) error {
	if plain == "" {
		apiErr := edge.Validation(field, field+" is required and must be at least 12 characters")
		apiErr.Details["reason"] = password.ReasonTooShort
		return apiErr
	}
	if strings.ContainsRune(plain, utf8.RuneError) {
		apiErr := edge.Validation(field, "password is not valid UTF-8")
		apiErr.Details["reason"] = password.ReasonInvalidUTF8
		return apiErr
	}
	return passwordError(field, password.Check(plain))
}

// passwordError turns a policy rejection into a 400 naming the field.
func passwordError(field string, err error) error {
	var policy *password.PolicyError
	if !errors.As(err, &policy) {
		return err
	}
	apiErr := edge.Validation(field, policy.Error())
	apiErr.Details["reason"] = policy.Reason
	apiErr.Details["min_length"] = policy.MinLength
	apiErr.Details["max_length"] = policy.MaxLength
	return apiErr
}

type registerInput struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

func (m *Module) register(r *edge.Request) error {
	var input registerInput
	if err := r.Decode(&input); err != nil {
		return err
	}

	email, err := normalizeEmail(input.Email)
	if err != nil {
		return invalidEmail()
	}
	if err := checkPassword("password", input.Password); err != nil {
		return err
	}
	if utf8.RuneCountInString(input.DisplayName) > maxDisplayNameRunes {
		return edge.Validation("display_name", fmt.Sprintf("display_name must be at most %d characters", maxDisplayNameRunes))
	}

	hash, err := m.hash(r, input.Password)
	if isBusy(err) {
		return err
	}
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	id, err := newID("usr_")
	if err != nil {
		return err
	}
	// The store keeps milliseconds; the response shows what a later read returns.
	now := m.now().UTC().Truncate(time.Millisecond)
	u := user{ID: id, Email: email, PasswordHash: hash, DisplayName: strings.TrimSpace(input.DisplayName), Role: roleUser, CreatedAt: now, UpdatedAt: now}
	if err := m.store.createUser(r.Context(), u); err != nil {
		if errors.Is(err, errEmailTaken) {
			conflict := edge.Conflict("an account with this email already exists")
			conflict.Details = map[string]any{"field": "email"}
			return conflict
		}
		return err
	}

	r.Logger().Info("account registered", slog.String("user_id", id))
	m.sendVerification(r.Context(), r.Logger(), u)
	return r.JSON(http.StatusCreated, viewOf(u))
}

// sendVerification issues a verification token and mails its link. A
// failure is logged, not returned: the account exists, and the user can
// ask for the mail again.
func (m *Module) sendVerification(ctx context.Context, logger *slog.Logger, u user) {
	link, err := m.issueEmailToken(ctx, u.ID, purposeVerifyEmail, m.opts.VerificationTTL, "/v1/auth/verify-email")
	if err == nil {
		err = m.mailer.Send(ctx, mail.Message{
			To:      u.Email,
			Subject: "Verify your email address for Nexus",
			Text: "Open this link to verify your email address:\n\n" + link + "\n\n" +
				"The link works once and expires in " + humanDuration(m.opts.VerificationTTL) + ".\n" +
				"If you did not create a Nexus account, ignore this message.\n",
		})
	}
	if err != nil {
		logger.Error("verification mail failed", slog.String("user_id", u.ID), slog.String("error", err.Error()))
	}
}

// issueEmailToken stores a one-time token for the user and returns the link that carries it.
func (m *Module) issueEmailToken(ctx context.Context, userID, purpose string, ttl time.Duration, path string) (string, error) {
	token, hash, err := randomToken(emailTokenBytes)
	if err != nil {
		return "", err
	}
	now := m.now()
	if err := m.store.insertEmailToken(ctx, hash, userID, purpose, now, now.Add(ttl)); err != nil {
		return "", err
	}
	return strings.TrimRight(m.opts.PublicURL, "/") + path + "?token=" + url.QueryEscape(token), nil
}

// allowMail reports whether another mail may go to the address in the
// current window, counting this one.
func (m *Module) allowMail(ctx context.Context, email string) bool {
	sum := sha256.Sum256([]byte(email))
	count, err := m.host.KV.IncrBy(ctx, "auth:mail:"+hex.EncodeToString(sum[:]), 1, m.opts.MailWindow)
	if err != nil {
		m.host.Logger.Error("count mails to an address failed", slog.String("error", err.Error()))
		return false
	}
	return count <= int64(m.opts.MailPerAddress)
}

type emailInput struct {
	Email string `json:"email"`
}

// resendVerification always returns 202, so it reveals nothing about which
// addresses have accounts.
func (m *Module) resendVerification(r *edge.Request) error {
	var input emailInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	email, err := normalizeEmail(input.Email)
	if err != nil {
		return invalidEmail()
	}

	u, err := m.store.userByEmail(r.Context(), email)
	switch {
	case errors.Is(err, errNotFound):
	case err != nil:
		return err
	case u.EmailVerifiedAt == nil && m.allowMail(r.Context(), email):
		m.sendVerification(r.Context(), r.Logger(), u)
	}
	return r.JSON(http.StatusAccepted, map[string]string{"status": "accepted"})
}

type tokenInput struct {
	Token string `json:"token"`
}

// verifyEmail takes JSON, or the form of verifyEmailLink, which gets an
// HTML page back.
func (m *Module) verifyEmail(r *edge.Request) error {
	if isForm(r) {
		_, err := m.verifyToken(r.Context(), string(r.Ctx.PostArgs().Peek("token")))
		var apiErr *edge.Error
		switch {
		case errors.As(err, &apiErr):
			return writePage(r, http.StatusBadRequest, "Verification failed",
				"This verification link is "+fmt.Sprint(apiErr.Details["reason"])+". Ask for a new verification mail.")
		case err != nil:
			return err
		}
		return writePage(r, http.StatusOK, "Email verified", "Your email address is verified. You can close this page and sign in.")
	}

	var input tokenInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	u, err := m.verifyToken(r.Context(), input.Token)
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, viewOf(u))
}

var verifyFormTemplate = template.Must(template.New("verify").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Verify your email address · Nexus</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>Verify your email address</h1>
<form method="post" action="/v1/auth/verify-email">
<input type="hidden" name="token" value="{{.Token}}">
<p><button type="submit">Verify</button></p>
</form></body></html>
`))

// verifyEmailLink is the target of the mailed link. It shows a button that
// posts the token instead of using it at once, so mail scanners that open
// links ahead of the user do not verify the address for them.
func (m *Module) verifyEmailLink(r *edge.Request) error {
	var body strings.Builder
	token := string(r.Ctx.QueryArgs().Peek("token"))
	if err := verifyFormTemplate.Execute(&body, map[string]string{"Token": token}); err != nil {
		return fmt.Errorf("render verification form: %w", err)
	}
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	r.Raw(http.StatusOK, "text/html; charset=utf-8", []byte(body.String()))
	return nil
}

// isForm reports whether the request body is an HTML form.
func isForm(r *edge.Request) bool {
	return strings.HasPrefix(string(r.Ctx.Request.Header.ContentType()), "application/x-www-form-urlencoded")
}

func (m *Module) verifyToken(ctx context.Context, token string) (user, error) {
	userID, reason, err := m.store.consumeEmailToken(ctx, hashToken(token), purposeVerifyEmail, m.now())
	if err != nil {
		return user{}, err
	}
	if reason != "" {
		return user{}, tokenError(reason)
	}
	if err := m.store.markVerified(ctx, userID, m.now()); err != nil {
		return user{}, err
	}
	return m.store.userByID(ctx, userID)
}

// wrongCurrentPassword is a 403 rather than a 401, so clients do not take
// it for an expired access token and refresh.
func wrongCurrentPassword(field string) *edge.Error {
	return edge.NewError(edge.CodeForbidden, "the current password is wrong", map[string]any{"field": field})
}

func tokenError(reason string) *edge.Error {
	apiErr := edge.Validation("token", "token is "+reason)
	apiErr.Details["reason"] = reason
	return apiErr
}

// currentUser loads the caller's account. An account deleted while its
// access token still verifies (by `nexus admin delete`, before the actor's
// recheck) gets 401 like an ended session.
func (m *Module) currentUser(r *edge.Request) (user, error) {
	u, err := m.store.userByID(r.Context(), r.Principal.UserID)
	if errors.Is(err, errNotFound) {
		r.Ctx.Response.Header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return user{}, edge.Unauthorized("the account no longer exists")
	}
	return u, err
}

func (m *Module) me(r *edge.Request) error {
	u, err := m.currentUser(r)
	if err != nil {
		return err
	}
	identities, err := m.store.identities(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, profileView{userView: viewOf(u), HasPassword: u.PasswordHash != "", Identities: identities})
}

type updateMeInput struct {
	DisplayName *string `json:"display_name"`
}

func (m *Module) updateMe(r *edge.Request) error {
	var input updateMeInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	if input.DisplayName == nil {
		return edge.Validation("display_name", "display_name is required")
	}
	name := strings.TrimSpace(*input.DisplayName)
	if utf8.RuneCountInString(name) > maxDisplayNameRunes {
		return edge.Validation("display_name", fmt.Sprintf("display_name must be at most %d characters", maxDisplayNameRunes))
	}

	if err := m.store.setDisplayName(r.Context(), r.Principal.UserID, name, m.now()); err != nil {
		return err
	}
	return m.me(r)
}

type deleteMeInput struct {
	Password string `json:"password"`
}

func (m *Module) deleteMe(r *edge.Request) error {
	var input deleteMeInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	u, err := m.currentUser(r)
	if err != nil {
		return err
	}
	ok, err := m.verify(r, input.Password, u.PasswordHash)
	if isBusy(err) {
		return err
	}
	if err != nil || !ok {
		return wrongCurrentPassword("password")
	}

	if err := m.deleteAccount(r.Context(), u.ID); err != nil {
		return err
	}
	r.Logger().Info("account deleted by its owner", slog.String("user_id", u.ID))
	return r.JSON(http.StatusOK, map[string]any{"id": u.ID, "deleted": true})
}

// deleteAccount deletes the account with every module's data of it.
func (m *Module) deleteAccount(ctx context.Context, userID string) error {
	return m.admin().Delete(ctx, userID)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Nexus</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// writePage writes a small HTML page, for links opened in a browser.
func writePage(r *edge.Request, status int, title, text string) error {
	var body strings.Builder
	if err := pageTemplate.Execute(&body, map[string]string{"Title": title, "Text": text}); err != nil {
		return fmt.Errorf("render page: %w", err)
	}
	r.Raw(status, "text/html; charset=utf-8", []byte(body.String()))
	return nil
}

// humanDuration writes whole hours or minutes, as in "24 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d >= time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d%time.Minute == 0 && d >= time.Minute:
		return plural(int(d/time.Minute), "minute")
	default:
		return d.String()
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
