package edge

import (
	"fmt"
	"net/http"
	"strings"
)

// Error codes of the API. Each code has one HTTP status, given by StatusOf.
const (
	CodeValidation      = "VALIDATION_ERROR"
	CodeUnauthorized    = "UNAUTHORIZED"
	CodeForbidden       = "FORBIDDEN"
	CodeEmailUnverified = "EMAIL_UNVERIFIED"
	CodeTierRequired    = "TIER_REQUIRED"
	CodeNotFound        = "NOT_FOUND"
	CodeConflict        = "CONFLICT"
	CodeAccountLocked   = "ACCOUNT_LOCKED"
	CodeQuotaExceeded   = "QUOTA_EXCEEDED"
	CodeRateLimited     = "RATE_LIMITED"
	CodeWebhookInvalid  = "WEBHOOK_INVALID"
	CodeInternal        = "INTERNAL_ERROR"
)

// internalMessage is the only message a client sees for an unexpected error.
const internalMessage = "internal error"

// Error is an expected failure that a handler returns. The edge writes it as
// {"error":{"code","message","details"}} with Status, and omits details when
// Details is empty. Message and Details are shown to the client, so they
// must never carry secrets.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
}

// Error returns the code and the message.
func (e *Error) Error() string {
	return e.Code + ": " + e.Message
}

// StatusOf returns the HTTP status of code, or 500 for a code the API does not define.
func StatusOf(code string) int {
	switch code {
	case CodeValidation, CodeWebhookInvalid:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodeEmailUnverified, CodeTierRequired:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeAccountLocked:
		return http.StatusLocked
	case CodeQuotaExceeded:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// NewError returns an Error with the status that StatusOf gives code.
// details may be nil.
func NewError(code, message string, details map[string]any) *Error {
	return &Error{Status: StatusOf(code), Code: code, Message: message, Details: details}
}

// Validation returns a 400 VALIDATION_ERROR about field, with details {"field": field}.
func Validation(field, message string) *Error {
	return NewError(CodeValidation, message, map[string]any{"field": field})
}

// Unauthorized returns a 401 UNAUTHORIZED.
func Unauthorized(message string) *Error {
	return NewError(CodeUnauthorized, message, nil)
}

// Forbidden returns a 403 FORBIDDEN.
func Forbidden(message string) *Error {
	return NewError(CodeForbidden, message, nil)
}

// EmailUnverified returns a 403 EMAIL_UNVERIFIED.
func EmailUnverified(message string) *Error {
	return NewError(CodeEmailUnverified, message, nil)
}

// TierRequired returns a 403 TIER_REQUIRED for feature, with details
// {"feature", "required_tier", "current_tier"}. requiredTier is the id of
// the lowest-ranked catalog tier that grants feature, and "" when no tier
// does, which the details show as null.
func TierRequired(feature, requiredTier, currentTier string) *Error {
	details := map[string]any{"feature": feature, "required_tier": nil, "current_tier": currentTier}
	message := fmt.Sprintf("feature %s is not available in any tier", feature)
	if requiredTier != "" {
		details["required_tier"] = requiredTier
		message = fmt.Sprintf("feature %s requires the %s tier or higher", feature, requiredTier)
	}
	return NewError(CodeTierRequired, message, details)
}

// NotFound returns a 404 NOT_FOUND.
func NotFound(message string) *Error {
	return NewError(CodeNotFound, message, nil)
}

// Conflict returns a 409 CONFLICT.
func Conflict(message string) *Error {
	return NewError(CodeConflict, message, nil)
}

// AccountLocked returns a 423 ACCOUNT_LOCKED.
func AccountLocked(message string) *Error {
	return NewError(CodeAccountLocked, message, nil)
}

// QuotaExceeded returns a 413 QUOTA_EXCEEDED for the quota limitType (such
// as "sync_bytes" or "request_body_bytes"), with details {"limit_type", "limit"}.
func QuotaExceeded(limitType string, limit int64) *Error {
	return NewError(CodeQuotaExceeded,
		fmt.Sprintf("%s limit of %d exceeded", limitType, limit),
		map[string]any{"limit_type": limitType, "limit": limit})
}

// RateLimited returns a 429 RATE_LIMITED with details {"retry_after": seconds}.
// The edge sets the Retry-After header for the rate limits it applies itself.
func RateLimited(retryAfterSeconds int) *Error {
	return NewError(CodeRateLimited,
		fmt.Sprintf("rate limit exceeded, retry after %d seconds", retryAfterSeconds),
		map[string]any{"retry_after": retryAfterSeconds})
}

// WebhookInvalid returns a 400 WEBHOOK_INVALID.
func WebhookInvalid(message string) *Error {
	return NewError(CodeWebhookInvalid, message, nil)
}

// methodNotAllowed returns the error for a method that the path does not
// serve. The spec defines no code for it, and the closest is
// VALIDATION_ERROR because the request itself is invalid. The status stays
// 405 so that HTTP clients and caches read it correctly, and the router
// sets the Allow header beside it.
func methodNotAllowed(method string, allowed []string) *Error {
	return &Error{
		Status:  http.StatusMethodNotAllowed,
		Code:    CodeValidation,
		Message: fmt.Sprintf("method %s is not allowed on this path, use %s", method, strings.Join(allowed, ", ")),
		Details: map[string]any{"method": method, "allowed": allowed},
	}
}
