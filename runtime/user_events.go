package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexus-suite/nexus/storage/kv"
)

// userEventsChannel carries user events between nodes that share a key-value store.
const userEventsChannel = "user-events"

// userEvent is one message on userEventsChannel.
type userEvent struct {
	Kind      string `json:"kind"` // end_session or refresh_entitlements
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id,omitempty"`
}

// AttachBus makes EndSession and RefreshEntitlements reach the user's actor
// on every node that shares store, and delivers the events of other nodes
// to this node's actors. It returns a function that detaches the bus.
func (u *Users) AttachBus(ctx context.Context, store kv.Store) (detach func(), err error) {
	cancel, err := store.Subscribe(ctx, userEventsChannel, u.deliverEvent)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", userEventsChannel, err)
	}
	u.bus.Store(&busBox{store})
	return func() {
		u.bus.Store(nil)
		cancel()
	}, nil
}

type busBox struct{ kv.Store }

func (u *Users) deliverEvent(message []byte) {
	var event userEvent
	if err := json.Unmarshal(message, &event); err != nil {
		u.opts.Logger.Warn("invalid user event", slog.String("error", err.Error()))
		return
	}
	switch event.Kind {
	case "end_session":
		u.tell(event.UserID, &endSession{SessionID: event.SessionID})
	case "refresh_entitlements":
		u.tell(event.UserID, &refreshEntitlements{})
	}
}

// publish sends event to the other nodes; a failure is logged, because
// those nodes still catch up at their next session recheck.
func (u *Users) publish(event userEvent) {
	box := u.bus.Load()
	if box == nil {
		return
	}
	message, err := json.Marshal(event)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.opts.AdmissionTimeout)
	defer cancel()
	if err := box.Publish(ctx, userEventsChannel, message); err != nil {
		u.opts.Logger.Warn("publish user event failed", slog.String("kind", event.Kind),
			slog.String("user_id", event.UserID), slog.String("error", err.Error()))
	}
}

// UserNotifier delivers changes to user actors. *Users implements it inside
// a server, and BusNotifier in a command that shares the server's key-value store.
type UserNotifier interface {
	EndSession(userID, sessionID string)
	RefreshEntitlements(userID string)
}

// Notifier returns u as a UserNotifier, or nil when u is nil, so callers
// can test the interface against nil.
func Notifier(u *Users) UserNotifier {
	if u == nil {
		return nil
	}
	return u
}

// BusNotifier publishes user events on a key-value store without running
// any actor, for commands such as `nexus admin`: every server attached to
// the same Redis delivers them to its actors at once.
type BusNotifier struct {
	Store  kv.Store
	Logger *slog.Logger
}

// EndSession publishes that sessionID of userID ended.
func (b BusNotifier) EndSession(userID, sessionID string) {
	b.publish(userEvent{Kind: "end_session", UserID: userID, SessionID: sessionID})
}

// RefreshEntitlements publishes that userID's entitlements changed.
func (b BusNotifier) RefreshEntitlements(userID string) {
	b.publish(userEvent{Kind: "refresh_entitlements", UserID: userID})
}

// busPublishTimeout bounds one publication from a command.
const busPublishTimeout = 5 * time.Second

func (b BusNotifier) publish(event userEvent) {
	message, err := json.Marshal(event)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), busPublishTimeout)
	defer cancel()
	if err := b.Store.Publish(ctx, userEventsChannel, message); err != nil && b.Logger != nil {
		b.Logger.Warn("publish user event failed; servers see the change at their next recheck",
			slog.String("kind", event.Kind), slog.String("user_id", event.UserID), slog.String("error", err.Error()))
	}
}
