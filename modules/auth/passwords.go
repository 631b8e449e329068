package auth

import (
	"bytes"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/modules/auth/mail"
)

// forgotPassword mails a reset link when the address has an account, and
// always returns 202, so it reveals nothing about which addresses do.
func (m *Module) forgotPassword(r *edge.Request) error {
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
	case m.allowMail(r.Context(), email):
		m.sendReset(r, u)
	}
	return r.JSON(http.StatusAccepted, map[string]string{"status": "accepted"})
}

func (m *Module) sendReset(r *edge.Request, u user) {
	link, err := m.issueEmailToken(r.Context(), u.ID, purposeResetPassword, m.opts.ResetTTL, "/v1/auth/password/reset")
	if err == nil {
		err = m.mailer.Send(r.Context(), mail.Message{
			To:      u.Email,
			Subject: "Reset your Nexus password",
			Text: "Open this link to choose a new password:\n\n" + link + "\n\n" +
				"The link works once and expires in " + humanDuration(m.opts.ResetTTL) + ". " +
				"Setting a new password signs you out everywhere.\n" +
				"If you did not ask for this, ignore this message; your password stays as it is.\n",
		})
	}
	if err != nil {
		r.Logger().Error("password reset mail failed", slog.String("user_id", u.ID), slog.String("error", err.Error()))
	}
}

var resetFormTemplate = template.Must(template.New("reset").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Choose a new password · Nexus</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>Choose a new password</h1>
<form method="post" action="/v1/auth/password/reset">
<input type="hidden" name="token" value="{{.Token}}">
<p><label>New password (at least 12 characters)<br>
<input type="password" name="password" minlength="12" maxlength="1024" required autocomplete="new-password"></label></p>
<p><button type="submit">Set password</button></p>
</form></body></html>
`))

// resetPasswordForm is the target of the mailed link: a form that posts
// the token and the new password. It works without JavaScript.
func (m *Module) resetPasswordForm(r *edge.Request) error {
	var body bytes.Buffer
	token := string(r.Ctx.QueryArgs().Peek("token"))
	if err := resetFormTemplate.Execute(&body, map[string]string{"Token": token}); err != nil {
		return err
	}
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	r.Raw(http.StatusOK, "text/html; charset=utf-8", body.Bytes())
	return nil
}

type resetInput struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// resetPassword sets a new password with a reset token and ends every
// session of the account. It takes JSON, or the form of resetPasswordForm.
func (m *Module) resetPassword(r *edge.Request) error {
	form := isForm(r)
	var input resetInput
	if form {
		input.Token = string(r.Ctx.PostArgs().Peek("token"))
		input.Password = string(r.Ctx.PostArgs().Peek("password"))
	} else if err := r.Decode(&input); err != nil {
		return err
	}

	err := m.applyReset(r, input)
	if form {
		var apiErr *edge.Error
		if errors.As(err, &apiErr) {
			return writePage(r, apiErr.Status, "Password not changed", apiErr.Message+".")
		}
		if err == nil {
			return writePage(r, http.StatusOK, "Password changed", "Your new password is set, and every session was signed out. Sign in again.")
		}
		return err
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, map[string]any{"password_changed": true})
}

func (m *Module) applyReset(r *edge.Request, input resetInput) error {
	if err := checkPassword("password", input.Password); err != nil {
		return err
	}
	userID, reason, err := m.store.consumeEmailToken(r.Context(), hashToken(input.Token), purposeResetPassword, m.now())
	if err != nil {
		return err
	}
	if reason != "" {
		return tokenError(reason)
	}

	if err := m.setPassword(r, userID, input.Password); err != nil {
		return err
	}
	if err := m.endSessions(r.Context(), userID, func(now time.Time) ([]string, error) {
		return m.store.revokeAllSessions(r.Context(), userID, now)
	}); err != nil {
		return err
	}
	// The mailed link proved the address, so a reset also verifies it.
	if err := m.store.markVerified(r.Context(), userID, m.now()); err != nil {
		return err
	}
	r.Logger().Info("password reset", slog.String("user_id", userID))
	return nil
}

func (m *Module) setPassword(r *edge.Request, userID, plain string) error {
	hash, err := m.hash(r, plain)
	if err != nil {
		return err
	}
	return m.store.setPasswordHash(r.Context(), userID, hash, m.now())
}

type changePasswordInput struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword needs the current password and ends every other session.
func (m *Module) changePassword(r *edge.Request) error {
	var input changePasswordInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	if err := checkPassword("new_password", input.NewPassword); err != nil {
		return err
	}
	u, err := m.currentUser(r)
	if err != nil {
		return err
	}
	ok, err := m.verify(r, input.CurrentPassword, u.PasswordHash)
	if isBusy(err) {
		return err
	}
	if err != nil || !ok {
		return wrongCurrentPassword("current_password")
	}

	if err := m.setPassword(r, u.ID, input.NewPassword); err != nil {
		return err
	}
	var ended int
	if err := m.endSessions(r.Context(), u.ID, func(now time.Time) ([]string, error) {
		ids, err := m.store.revokeOtherSessions(r.Context(), u.ID, r.Principal.SessionID, now)
		ended = len(ids)
		return ids, err
	}); err != nil {
		return err
	}
	r.Logger().Info("password changed", slog.String("user_id", u.ID), slog.Int("sessions_ended", ended))
	return r.JSON(http.StatusOK, map[string]any{"password_changed": true, "sessions_ended": ended})
}
