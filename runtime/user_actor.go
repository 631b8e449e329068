package runtime

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/runtime/gcra"
)

// Messages between the edge and a user actor. They carry only values, so
// they can cross a process boundary once user actors become cluster grains.
type (
	admitRequest struct {
		// Seq identifies the request; the response echoes it.
		Seq       uint64
		SessionID string
		// WithoutSession admits a request whose credential belongs to no
		// session; SessionID is empty then and no session is checked.
		WithoutSession bool
	}
	admitResponse struct {
		Seq       uint64
		Admission Admission
		Outcome   outcome
		// Failure describes an outcomeFailed.
		Failure string
	}
	endSession struct {
		SessionID string
	}
	refreshEntitlements struct{}
)

func (r *admitResponse) sequence() uint64 { return r.Seq }

type outcome uint8

const (
	outcomeAdmitted outcome = iota
	outcomeSessionEnded
	outcomeRateLimited
	outcomeFailed
)

// ErrAdmissionFailed wraps a store failure inside a user actor.
var ErrAdmissionFailed = errors.New("admission failed")

func (o outcome) err() error {
	switch o {
	case outcomeAdmitted:
		return nil
	case outcomeSessionEnded:
		return ErrSessionEnded
	case outcomeRateLimited:
		return ErrRateLimited
	default:
		return ErrAdmissionFailed
	}
}

// maxSessionsPerActor caps the sessions one actor remembers; a user rarely
// has more than a handful live, and the oldest entry is dropped beyond it.
const maxSessionsPerActor = 64

// userActor holds one user's state: the sessions it has checked, the rate
// limiter's theoretical arrival time, and the entitlements snapshot. All of
// it is a cache of the store except the TAT, so losing the actor loses at
// most a partial rate-limit window.
type userActor struct {
	users  *Users
	userID string

	sessions     map[string]sessionView
	entitlements *Entitlements
	limit        gcra.Limit
	tat          time.Time
}

// sessionView is the actor's cached view of one session.
type sessionView struct {
	ended     bool
	expiresAt time.Time
	checkedAt time.Time
}

func newUserActor(users *Users, userID string) *userActor {
	return &userActor{users: users, userID: userID, sessions: map[string]sessionView{}}
}

// Receive handles one message at a time, so the actor's state needs no lock.
func (a *userActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *admitRequest:
		response := a.admit(msg.SessionID, msg.WithoutSession)
		response.Seq = msg.Seq
		ctx.Respond(response)
	case *endSession:
		a.sessions[msg.SessionID] = sessionView{ended: true}
	case *refreshEntitlements:
		a.entitlements = nil
	}
}

func (a *userActor) admit(sessionID string, withoutSession bool) *admitResponse {
	now := a.users.opts.Clock.Now()

	if !withoutSession {
		live, err := a.sessionLive(sessionID, now)
		if err != nil {
			return a.failure("check session", err)
		}
		if !live {
			return &admitResponse{Outcome: outcomeSessionEnded}
		}
	}

	if a.entitlements == nil {
		if err := a.loadEntitlements(); err != nil {
			return a.failure("resolve entitlements", err)
		}
	}

	decision, tat := gcra.Decide(a.limit, a.tat, now)
	a.tat = tat
	response := &admitResponse{
		Admission: Admission{Entitlements: *a.entitlements, Limit: a.limit, Decision: decision},
	}
	if !decision.Allowed {
		response.Outcome = outcomeRateLimited
	}
	return response
}

// sessionLive reports whether the session may be used now, reading it from
// the store when the actor has not seen it or its view is older than the
// recheck interval. An ended session stays ended without another read.
func (a *userActor) sessionLive(sessionID string, now time.Time) (bool, error) {
	view, known := a.sessions[sessionID]
	if known && view.ended {
		return false, nil
	}
	fresh := known && now.Sub(view.checkedAt) < a.users.opts.SessionRecheckInterval
	if fresh {
		return now.Before(view.expiresAt), nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), a.users.opts.AdmissionTimeout)
	defer cancel()
	state, err := a.users.opts.Sessions.LookupSession(ctx, sessionID)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		a.remember(sessionID, sessionView{ended: true, checkedAt: now})
		return false, nil
	case err != nil && known:
		// The store is unreachable but the session was live when last read:
		// keep admitting on that view rather than failing every request.
		a.users.opts.Logger.Warn("session recheck failed, using cached view",
			slog.String("user_id", a.userID), slog.String("error", err.Error()))
		return now.Before(view.expiresAt), nil
	case err != nil:
		return false, err
	}

	// A session of another user, a revoked one and an expired one all end here.
	ended := state.UserID != a.userID || state.Revoked || !now.Before(state.ExpiresAt)
	a.remember(sessionID, sessionView{ended: ended, expiresAt: state.ExpiresAt, checkedAt: now})
	return !ended, nil
}

func (a *userActor) remember(sessionID string, view sessionView) {
	if _, ok := a.sessions[sessionID]; !ok && len(a.sessions) >= maxSessionsPerActor {
		a.dropOldestSession()
	}
	a.sessions[sessionID] = view
}

func (a *userActor) dropOldestSession() {
	var oldestID string
	var oldest time.Time
	for id, view := range a.sessions {
		if oldestID == "" || view.checkedAt.Before(oldest) {
			oldestID, oldest = id, view.checkedAt
		}
	}
	delete(a.sessions, oldestID)
}

func (a *userActor) loadEntitlements() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.users.opts.AdmissionTimeout)
	defer cancel()

	resolver := a.users.resolver.Load()
	entitlements, err := resolver.Resolve(ctx, a.userID)
	if err != nil {
		return err
	}
	a.entitlements = &entitlements
	a.limit = gcra.Limit{
		Rate:   entitlements.Limits.RequestsPerMinute,
		Period: time.Minute,
		Burst:  entitlements.Limits.Burst,
	}
	return nil
}

func (a *userActor) failure(step string, err error) *admitResponse {
	a.users.opts.Logger.Error("user actor "+step+" failed",
		slog.String("user_id", a.userID), slog.String("error", err.Error()))
	return &admitResponse{Outcome: outcomeFailed, Failure: step + ": " + err.Error()}
}
