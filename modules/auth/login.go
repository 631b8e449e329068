package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/modules/auth/password"
)

// maxDeviceNameRunes caps a session's device name, from the request or the User-Agent.
const maxDeviceNameRunes = 100

type loginInput struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name"`
}

// loginResult is the body of a successful login.
type loginResult struct {
	tokenPair
	User userView `json:"user"`
}

// invalidCredentials is the one response to a wrong password and to an
// unknown email, so neither status nor body distinguishes them.
func invalidCredentials() *edge.Error {
	return edge.Unauthorized("email or password is wrong")
}

// login signs a user in with email and password and starts a session.
func (m *Module) login(r *edge.Request) error {
	var input loginInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	email, err := normalizeEmail(input.Email)
	if err != nil {
		return invalidEmail()
	}
	if input.Password == "" {
		return edge.Validation("password", "password is required")
	}

	u, err := m.authenticate(r, email, input.Password)
	if err != nil {
		return err
	}

	pair, err := m.startSession(r.Context(), r, u, input.DeviceName)
	if err != nil {
		return err
	}
	r.Logger().Info("signed in", slog.String("user_id", u.ID), slog.String("session_id", pair.SessionID))
	return r.JSON(http.StatusOK, loginResult{tokenPair: pair, User: viewOf(u)})
}

// authenticate checks an email and password for the login route and the
// device verification page. Each attempt is counted per normalised email
// before any password is evaluated, whether or not the account exists. So
// concurrent guesses cannot evaluate more than login_max_failures passwords
// in a window, and a lock on an unknown address looks like any other. The
// returned error is the response to send: 401, 423 or 403.
func (m *Module) authenticate(r *edge.Request, email, plain string) (user, error) {
	if err := m.requireSSOError(r, email); err != nil {
		return user{}, err
	}
	ctx := r.Context()
	guard := m.loginGuard(email)
	if until, locked, err := guard.lockedUntil(ctx, m.now()); err != nil {
		return user{}, err
	} else if locked {
		return user{}, accountLocked(r, until, m.now(), lockedByFailures)
	}
	attempt, err := m.host.KV.IncrBy(ctx, guard.attemptsKey, 1, m.opts.LoginFailureWindow)
	if err != nil {
		return user{}, fmt.Errorf("count login attempts: %w", err)
	}
	if attempt > int64(m.opts.LoginMaxFailures) {
		until, err := guard.lock(ctx, m.now().Add(m.opts.LockoutDuration), m.opts.LockoutDuration)
		if err != nil {
			return user{}, err
		}
		return user{}, accountLocked(r, until, m.now(), lockedByFailures)
	}

	u, err := m.store.userByEmail(ctx, email)
	if errors.Is(err, errNotFound) {
		if err := m.dummyVerify(r, plain); err != nil {
			return user{}, err
		}
		return user{}, m.failedLogin(ctx, guard, attempt)
	}
	if err != nil {
		return user{}, err
	}
	if u.PasswordHash == "" {
		// An account made through an external provider has no password
		// until the user sets one through a reset.
		if err := m.dummyVerify(r, plain); err != nil {
			return user{}, err
		}
		return user{}, m.failedLogin(ctx, guard, attempt)
	}
	ok, err := m.verify(r, plain, u.PasswordHash)
	if isBusy(err) {
		return user{}, err
	}
	if err != nil || !ok {
		if err != nil {
			r.Logger().Error("stored password hash is unreadable", slog.String("user_id", u.ID), slog.String("error", err.Error()))
		}
		return user{}, m.failedLogin(ctx, guard, attempt)
	}

	// The password is right: the count starts over, and only now may the
	// response depend on the account's state.
	if err := m.host.KV.Delete(ctx, guard.attemptsKey); err != nil {
		r.Logger().Warn("reset login attempts failed", slog.String("user_id", u.ID), slog.String("error", err.Error()))
	}
	if u.LockedUntil != nil && m.now().Before(*u.LockedUntil) {
		return user{}, accountLocked(r, *u.LockedUntil, m.now(), lockedByOperator)
	}
	if u.EmailVerifiedAt == nil {
		return user{}, edge.EmailUnverified("verify your email address before signing in")
	}
	m.rehashIfNeeded(ctx, r, u, plain)

	return u, nil
}

// failedLogin locks the address once this attempt used up the window's
// allowance, and returns 401 either way.
func (m *Module) failedLogin(ctx context.Context, guard loginGuard, attempt int64) error {
	if attempt >= int64(m.opts.LoginMaxFailures) {
		if _, err := guard.lock(ctx, m.now().Add(m.opts.LockoutDuration), m.opts.LockoutDuration); err != nil {
			return err
		}
	}
	return invalidCredentials()
}

func (m *Module) rehashIfNeeded(ctx context.Context, r *edge.Request, u user, plain string) {
	if !password.NeedsRehash(u.PasswordHash, m.params) {
		return
	}
	hash, err := m.hash(r, plain)
	if err == nil {
		err = m.store.setPasswordHash(ctx, u.ID, hash, m.now())
	}
	if err != nil {
		r.Logger().Error("rehash password failed", slog.String("user_id", u.ID), slog.String("error", err.Error()))
		return
	}
	r.Logger().Info("password rehashed with the current parameters", slog.String("user_id", u.ID))
}

// startSession creates a session with its first refresh token and returns the token pair.
func (m *Module) startSession(ctx context.Context, r *edge.Request, u user, deviceName string) (tokenPair, error) {
	now := m.now()
	sessionID, err := newID("ses_")
	if err != nil {
		return tokenPair{}, err
	}
	userAgent := string(r.Ctx.Request.Header.UserAgent())
	if strings.TrimSpace(deviceName) == "" {
		deviceName = userAgent
	}
	sess := session{
		ID: sessionID, UserID: u.ID, DeviceName: truncateRunes(strings.TrimSpace(deviceName), maxDeviceNameRunes),
		IP: r.ClientIP(), UserAgent: truncateRunes(userAgent, 512), CreatedAt: now, ExpiresAt: now.Add(m.opts.SessionTTL),
	}
	if err := m.store.insertSession(ctx, sess); err != nil {
		return tokenPair{}, err
	}

	pair, refreshHash, err := m.newPair(u.ID, sessionID, now)
	if err != nil {
		return tokenPair{}, err
	}
	if err := m.store.insertRefreshToken(ctx, m.store.db, refreshHash, sessionID, now, sess.ExpiresAt); err != nil {
		return tokenPair{}, err
	}
	return pair, nil
}

func truncateRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max])
}

// loginGuard names the key-value entries that count and lock sign-in
// attempts for one normalised email. The keys hold a digest, not the address.
type loginGuard struct {
	store       kvStore
	attemptsKey string
	lockKey     string
}

func (m *Module) loginGuard(email string) loginGuard {
	sum := sha256.Sum256([]byte(email))
	digest := hex.EncodeToString(sum[:])
	return loginGuard{store: m.host.KV, attemptsKey: "auth:login:attempts:" + digest, lockKey: "auth:login:lock:" + digest}
}

// kvStore is the part of kv.Store that the guard uses.
type kvStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Delete(ctx context.Context, keys ...string) error
}

// lockedUntil returns the end of the lock in force at now, if there is
// one. A lock whose end has passed by the module's clock is cleared with the
// attempts it counted, even if the store has not expired it yet.
func (g loginGuard) lockedUntil(ctx context.Context, now time.Time) (time.Time, bool, error) {
	value, ok, err := g.store.Get(ctx, g.lockKey)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read login lock: %w", err)
	}
	if !ok {
		return time.Time{}, false, nil
	}
	ms, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read login lock: invalid value %q", value)
	}
	until := time.UnixMilli(ms).UTC()
	if now.Before(until) {
		return until, true, nil
	}
	if err := g.store.Delete(ctx, g.lockKey, g.attemptsKey); err != nil {
		return time.Time{}, false, fmt.Errorf("clear expired login lock: %w", err)
	}
	return time.Time{}, false, nil
}

// lock sets a lock until the given time unless one is set, and returns
// the end of the lock in force.
func (g loginGuard) lock(ctx context.Context, until time.Time, ttl time.Duration) (time.Time, error) {
	set, err := g.store.SetNX(ctx, g.lockKey, []byte(strconv.FormatInt(until.UnixMilli(), 10)), ttl)
	if err != nil {
		return time.Time{}, fmt.Errorf("set login lock: %w", err)
	}
	if set {
		return until.UTC(), nil
	}
	current, locked, err := g.lockedUntil(ctx, time.Time{})
	if err != nil || !locked {
		return until.UTC(), err
	}
	return current, nil
}

// Messages of a 423, by the cause of the lock.
const (
	lockedByFailures = "too many failed sign-in attempts; try again later"
	lockedByOperator = "the account is locked by an operator"
)

// accountLocked returns 423 with the end of the lock and Retry-After.
func accountLocked(r *edge.Request, until, now time.Time, message string) error {
	// Whole seconds rounded up, computed without the overflow that adding
	// to a Duration near its maximum would cause for a lock without an end.
	wait := until.Sub(now)
	seconds := int64(wait / time.Second)
	if wait%time.Second != 0 {
		seconds++
	}
	if seconds < 1 {
		seconds = 1
	}
	r.Ctx.Response.Header.Set("Retry-After", strconv.FormatInt(seconds, 10))
	apiErr := edge.AccountLocked(message)
	apiErr.Details = map[string]any{"locked_until": until.UTC().Format(time.RFC3339), "retry_after": seconds}
	return apiErr
}
