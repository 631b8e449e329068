package runtime

import (
	"errors"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// Errors returned by Users.Admit. Both mean the request must not proceed;
// other errors are failures of the runtime or the store.
var (
	// ErrSessionEnded means the token's session was revoked, expired or
	// never existed.
	ErrSessionEnded = errors.New("session ended")
	// ErrRateLimited means the user's rate limit rejected the request; the
	// Admission still carries the limit and the decision.
	ErrRateLimited = errors.New("rate limit exceeded")
)

// Entitlements is the snapshot of what a user may do, cached by the user's
// actor and handed to handlers with each admitted request. It is a value:
// handlers may keep it, and changing it never touches the actor's copy.
type Entitlements struct {
	// Tier is the tier id from the catalog, such as "core".
	Tier string `json:"tier"`
	// TierName is the tier's display name, such as "Core".
	TierName string `json:"tier_name"`
	// Source is the origin of the tier: default, trial, subscription or override.
	Source   string             `json:"source"`
	Features []string           `json:"features"`
	Limits   configs.TierLimits `json:"limits"`
	// Trial is the user's one trial, nil when the user never started one.
	// It is shared between copies of the snapshot, so it must not be changed.
	Trial *Trial `json:"trial"`
}

// Trial is the state of a user's trial in an entitlements snapshot.
type Trial struct {
	// Tier is the tier id the trial grants.
	Tier      string    `json:"tier"`
	StartedAt time.Time `json:"started_at"`
	EndsAt    time.Time `json:"ends_at"`
	// Active is whether the trial had not ended when the snapshot was resolved.
	Active bool `json:"active"`
}

// HasFeature reports whether the snapshot grants feature.
func (e Entitlements) HasFeature(feature string) bool {
	for _, f := range e.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// Admission is a user actor's decision on one request.
type Admission struct {
	Entitlements Entitlements
	// Limit is the rate limit applied, from the user's tier.
	Limit gcra.Limit
	// Decision is the rate limiter's verdict, for the response headers.
	Decision gcra.Decision
}
