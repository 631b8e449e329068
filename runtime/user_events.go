package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

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
