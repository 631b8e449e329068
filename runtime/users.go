package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// SessionState is the stored state of one session.
type SessionState struct {
	UserID    string
	ExpiresAt time.Time
	// Revoked is true once the session was ended (logout, reuse detection, an operator).
	Revoked bool
}

// SessionSource reads sessions from the store. Lookup returns ErrSessionNotFound
// for a session that does not exist.
type SessionSource interface {
	LookupSession(ctx context.Context, sessionID string) (SessionState, error)
}

// ErrSessionNotFound is returned by a SessionSource for an unknown session id.
var ErrSessionNotFound = errors.New("session not found")

// EntitlementResolver computes a user's entitlements from the store. Until
// the entitlements module provides one, every user gets the default tier.
type EntitlementResolver interface {
	Resolve(ctx context.Context, userID string) (Entitlements, error)
}

// UsersOptions configures the per-user actors.
type UsersOptions struct {
	System   *actor.ActorSystem
	Sessions SessionSource
	Resolver EntitlementResolver
	Clock    clock.Clock
	Logger   *slog.Logger
	// IdleTimeout is how long an actor lives without a request before it passivates.
	IdleTimeout time.Duration
	// SessionRecheckInterval is how long an actor trusts a live session
	// before reading it from the store again.
	SessionRecheckInterval time.Duration
	// AdmissionTimeout bounds one round trip to an actor.
	AdmissionTimeout time.Duration
}

// userDispatcher runs a user actor's mailbox on the goroutine that posts to
// it while the mailbox is idle, instead of starting a goroutine per batch.
// An admission then costs no goroutine switch on the way in. The mailbox
// still processes one message at a time, and the reply is a message, so
// the actor stays location-transparent.
var userDispatcher = actor.NewSynchronizedDispatcher(userMailboxThroughput)

// userMailboxThroughput is how many messages a mailbox processes before it
// yields the goroutine it runs on.
const userMailboxThroughput = 300

// Users owns the per-user actors: one actor per user id, created on the
// first request and passivated after IdleTimeout without one. Every
// exchange with an actor is a message, so nothing here assumes that the
// actor runs in the caller's process.
type Users struct {
	opts     UsersOptions
	resolver atomic.Pointer[resolverBox]

	mu     sync.RWMutex
	actors map[string]*userEntry

	replies *replySlots
	seq     atomic.Uint64
	bus     atomic.Pointer[busBox]

	stopSweep chan struct{}
	sweepDone chan struct{}
	stopOnce  sync.Once
}

type resolverBox struct{ EntitlementResolver }

// userEntry is the local directory record of one live actor.
type userEntry struct {
	pid *actor.PID
	// state counts the requests on their way to the actor; -1 means the
	// entry is retired and its actor is stopping, so callers must not use it.
	state atomic.Int64
	// lastSeen is the clock time of the latest request, in unix nanoseconds.
	lastSeen atomic.Int64
}

// NewUsers creates the directory of user actors and starts its idle sweep.
func NewUsers(opts UsersOptions) *Users {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	u := &Users{
		opts:      opts,
		actors:    map[string]*userEntry{},
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	u.resolver.Store(&resolverBox{opts.Resolver})
	u.replies = newReplySlots(opts.System)

	go u.sweepLoop()
	return u
}

// SetResolver replaces the entitlement resolver. Actors that already hold a
// snapshot keep it until RefreshEntitlements is called for their user.
func (u *Users) SetResolver(r EntitlementResolver) { u.resolver.Store(&resolverBox{r}) }

// Admit sends an admission request for sessionID to the user's actor and
// returns its decision. It returns ErrSessionEnded or ErrRateLimited when the
// actor rejects the request, and fills the Admission when the request is
// admitted and when it is rate-limited.
func (u *Users) Admit(ctx context.Context, userID, sessionID string) (Admission, error) {
	return u.admit(ctx, userID, sessionID, false)
}

// AdmitCredential is Admit for a request authenticated by a credential
// that belongs to no session, such as a per-server MCP token that a module
// issued and checked itself. The actor applies the user's rate limit and
// returns the entitlements, but checks no session. It returns
// ErrRateLimited when the limit rejects the request.
func (u *Users) AdmitCredential(ctx context.Context, userID string) (Admission, error) {
	return u.admit(ctx, userID, "", true)
}

func (u *Users) admit(ctx context.Context, userID, sessionID string, withoutSession bool) (Admission, error) {
	// A retired entry or a dead letter means that the actor passivated
	// between the lookup and the send. The next attempt finds or creates a new one.
	for attempt := 0; attempt < 3; attempt++ {
		entry, err := u.enter(userID)
		if err != nil {
			return Admission{}, err
		}
		request := &admitRequest{Seq: u.seq.Add(1), SessionID: sessionID, WithoutSession: withoutSession}
		reply, err := u.request(ctx, entry.pid, request, request.Seq)
		entry.state.Add(-1)
		if errors.Is(err, actor.ErrDeadLetter) {
			u.forget(userID, entry)
			continue
		}
		if err != nil {
			return Admission{}, fmt.Errorf("admit user %s: %w", userID, err)
		}

		response, ok := reply.(*admitResponse)
		if !ok {
			return Admission{}, fmt.Errorf("admit user %s: unexpected reply %T", userID, reply)
		}
		return response.Admission, response.Outcome.err()
	}
	return Admission{}, fmt.Errorf("admit user %s: actor kept stopping", userID)
}

// EndSession sends the user's live actor, if any, the end of sessionID, so
// the next request with it is rejected without waiting for a recheck. With
// a bus attached, the event also reaches the actors on other nodes.
func (u *Users) EndSession(userID, sessionID string) {
	u.tell(userID, &endSession{SessionID: sessionID})
	u.publish(userEvent{Kind: "end_session", UserID: userID, SessionID: sessionID})
}

// RefreshEntitlements makes the user's actor, if it is live, drop its
// entitlement snapshot and rate-limit tier, so the next request resolves
// them again. With a bus attached, the actors on other nodes do too.
func (u *Users) RefreshEntitlements(userID string) {
	u.tell(userID, &refreshEntitlements{})
	u.publish(userEvent{Kind: "refresh_entitlements", UserID: userID})
}

// Count returns the number of live user actors.
func (u *Users) Count() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.actors)
}

// Stop ends the idle sweep and stops every user actor.
func (u *Users) Stop() {
	u.stopOnce.Do(func() {
		close(u.stopSweep)
		<-u.sweepDone

		u.mu.Lock()
		entries := u.actors
		u.actors = map[string]*userEntry{}
		u.mu.Unlock()

		for _, entry := range entries {
			u.opts.System.Root.Stop(entry.pid)
		}
	})
}

func (u *Users) request(ctx context.Context, pid *actor.PID, message any, seq uint64) (any, error) {
	timeout := u.opts.AdmissionTimeout
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left < timeout || timeout <= 0 {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	return u.replies.request(pid, message, seq, timeout)
}

// enter returns the live entry of userID with one request counted on it,
// spawning the actor when there is none.
func (u *Users) enter(userID string) (*userEntry, error) {
	now := u.opts.Clock.Now().UnixNano()
	for {
		u.mu.RLock()
		entry, ok := u.actors[userID]
		u.mu.RUnlock()

		if !ok {
			var err error
			entry, err = u.spawn(userID)
			if err != nil {
				return nil, err
			}
		}
		if entry.tryEnter() {
			entry.lastSeen.Store(now)
			return entry, nil
		}
		u.forget(userID, entry)
	}
}

func (e *userEntry) tryEnter() bool {
	for {
		state := e.state.Load()
		if state < 0 {
			return false
		}
		if e.state.CompareAndSwap(state, state+1) {
			return true
		}
	}
}

func (u *Users) spawn(userID string) (*userEntry, error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	if entry, ok := u.actors[userID]; ok {
		return entry, nil
	}
	// The directory maps users to actors, and each actor gets a unique
	// generated name, so a new actor does not wait for a passivating one's name.
	props := actor.PropsFromProducer(func() actor.Actor { return newUserActor(u, userID) },
		actor.WithDispatcher(userDispatcher))
	pid := u.opts.System.Root.SpawnPrefix(props, "user-")
	entry := &userEntry{pid: pid}
	entry.lastSeen.Store(u.opts.Clock.Now().UnixNano())
	u.actors[userID] = entry
	return entry, nil
}

// forget removes entry from the directory if it is still the one listed.
func (u *Users) forget(userID string, entry *userEntry) {
	u.mu.Lock()
	if u.actors[userID] == entry {
		delete(u.actors, userID)
	}
	u.mu.Unlock()
}

func (u *Users) tell(userID string, message any) {
	u.mu.RLock()
	entry, ok := u.actors[userID]
	u.mu.RUnlock()
	if ok {
		u.opts.System.Root.Send(entry.pid, message)
	}
}

func (u *Users) sweepLoop() {
	defer close(u.sweepDone)

	interval := u.opts.IdleTimeout / 4
	if interval < 50*time.Millisecond {
		interval = 50 * time.Millisecond
	}
	if interval > 30*time.Second {
		interval = 30 * time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for {
		select {
		case <-u.stopSweep:
			return
		case <-ticker.C:
			u.Passivate()
		}
	}
}

// Passivate stops every actor idle for longer than IdleTimeout by the
// clock and returns how many it stopped. The sweep calls it on a timer;
// tests call it after advancing a fake clock.
func (u *Users) Passivate() int {
	cutoff := u.opts.Clock.Now().Add(-u.opts.IdleTimeout).UnixNano()

	u.mu.Lock()
	var idle []*userEntry
	for userID, entry := range u.actors {
		if entry.lastSeen.Load() > cutoff {
			continue
		}
		// Only an entry with no request on its way may retire, so no
		// message can land in a mailbox that is about to be dropped.
		if !entry.state.CompareAndSwap(0, -1) {
			continue
		}
		delete(u.actors, userID)
		idle = append(idle, entry)
	}
	u.mu.Unlock()

	for _, entry := range idle {
		u.opts.System.Root.Poison(entry.pid)
	}
	return len(idle)
}
