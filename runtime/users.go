package runtime

import "context"

// Users owns the per-user actors. Admit sends one admission message to the
// actor of userID, creating the actor when it does not exist.
type Users struct{}

// Admit asks the user's actor whether the request of sessionID may proceed.
// It returns ErrSessionEnded or ErrRateLimited when the actor rejects it.
func (u *Users) Admit(ctx context.Context, userID, sessionID string) (Admission, error) {
	panic("not implemented yet")
}
