package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Error is an error response of the API: the spec's envelope
// {"error": {"code", "message", "details"}} with its HTTP status.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the spec's error code, such as VALIDATION_ERROR or
	// TIER_REQUIRED. A response without the envelope (a proxy's error
	// page, say) gets a code from its status, such as INTERNAL_ERROR.
	Code    string
	Message string
	Details map[string]any
	// RequestID is the server's X-Request-Id, for support requests.
	RequestID string
	// RetryAfter is the wait a 429 or 503 asked for, or zero.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.RequestID != "" {
		return fmt.Sprintf("%s (%d %s, request %s)", e.Message, e.Status, e.Code, e.RequestID)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// DecodeDetails decodes the error's details into dst, a pointer to a
// struct of the fields that the route documents for this code.
func (e *Error) DecodeDetails(dst any) error {
	data, err := json.Marshal(e.Details)
	if err != nil {
		return fmt.Errorf("encode error details: %w", err)
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return fmt.Errorf("decode error details: %w", err)
	}
	return nil
}

// ErrSignInRequired is returned, wrapped, when the session cannot be
// renewed: there is no refresh token, or the server rejected it because
// it expired or the session ended. The user has to sign in again.
var ErrSignInRequired = errors.New("the session has ended; sign in again (nexus login)")

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// codeOfStatus names an error code for a status without an envelope.
func codeOfStatus(status int) string {
	switch {
	case status == 400:
		return "VALIDATION_ERROR"
	case status == 401:
		return "UNAUTHORIZED"
	case status == 403:
		return "FORBIDDEN"
	case status == 404:
		return "NOT_FOUND"
	case status == 409:
		return "CONFLICT"
	case status == 413:
		return "QUOTA_EXCEEDED"
	case status == 423:
		return "ACCOUNT_LOCKED"
	case status == 429:
		return "RATE_LIMITED"
	default:
		return "INTERNAL_ERROR"
	}
}
