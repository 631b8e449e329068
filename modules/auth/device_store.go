package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Statuses of a device authorization request.
const (
	deviceStatusPending  = "pending"
	deviceStatusApproved = "approved"
	deviceStatusDenied   = "denied"
	deviceStatusConsumed = "consumed"
)

// deviceRequest is one row of device_codes.
type deviceRequest struct {
	DeviceCodeHash string
	UserCode       string
	ClientID       string
	Scope          string
	Status         string
	UserID         string
	Interval       time.Duration
	CreatedAt      time.Time
	ExpiresAt      time.Time
}

// deviceRetention is how long a device request is kept after it expires,
// so a late poll still gets expired_token rather than invalid_grant.
const deviceRetention = time.Hour

func (s *store) insertDeviceRequest(ctx context.Context, req deviceRequest) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, status, interval_seconds, created_at, expires_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		req.DeviceCodeHash, req.UserCode, req.ClientID, req.Scope, deviceStatusPending,
		int64(req.Interval/time.Second), req.CreatedAt.UnixMilli(), req.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert device request of client %s: %w", req.ClientID, err)
	}
	return nil
}

// purgeDeviceRequests deletes requests that expired more than deviceRetention ago.
func (s *store) purgeDeviceRequests(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM device_codes WHERE expires_at < $1`, now.Add(-deviceRetention).UnixMilli()); err != nil {
		return fmt.Errorf("purge expired device requests: %w", err)
	}
	return nil
}

const deviceColumns = `device_code_hash, user_code, client_id, scope, status, COALESCE(user_id, ''), interval_seconds, created_at, expires_at`

func scanDeviceRequest(row *sql.Row) (deviceRequest, error) {
	var req deviceRequest
	var interval, created, expires int64
	err := row.Scan(&req.DeviceCodeHash, &req.UserCode, &req.ClientID, &req.Scope, &req.Status, &req.UserID, &interval, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return deviceRequest{}, errNotFound
	}
	if err != nil {
		return deviceRequest{}, err
	}
	req.Interval = time.Duration(interval) * time.Second
	req.CreatedAt = time.UnixMilli(created).UTC()
	req.ExpiresAt = time.UnixMilli(expires).UTC()
	return req, nil
}

func (s *store) deviceRequestByCode(ctx context.Context, deviceCodeHash string) (deviceRequest, error) {
	req, err := scanDeviceRequest(s.db.QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM device_codes WHERE device_code_hash = $1`, deviceCodeHash))
	if err != nil && !errors.Is(err, errNotFound) {
		return deviceRequest{}, fmt.Errorf("load device request: %w", err)
	}
	return req, err
}

func (s *store) deviceRequestByUserCode(ctx context.Context, userCode string) (deviceRequest, error) {
	req, err := scanDeviceRequest(s.db.QueryRowContext(ctx,
		`SELECT `+deviceColumns+` FROM device_codes WHERE user_code = $1`, userCode))
	if err != nil && !errors.Is(err, errNotFound) {
		return deviceRequest{}, fmt.Errorf("load device request by user code: %w", err)
	}
	return req, err
}

// recordDevicePoll stores the time of a poll. When the previous poll came
// more than jitter before the request's interval had passed, it also adds
// slowDownStep to the interval, for good, and reports slowDown.
func (s *store) recordDevicePoll(ctx context.Context, deviceCodeHash string, now time.Time, jitter, slowDownStep time.Duration) (slowDown bool, err error) {
	result, err := s.db.ExecContext(ctx,
		`UPDATE device_codes SET interval_seconds = interval_seconds + $1, last_poll_at = $2
		 WHERE device_code_hash = $3 AND last_poll_at IS NOT NULL
		   AND $2 - last_poll_at < interval_seconds * 1000 - $4`,
		int64(slowDownStep/time.Second), now.UnixMilli(), deviceCodeHash, jitter.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("record device poll: %w", err)
	}
	if n, err := result.RowsAffected(); err != nil {
		return false, fmt.Errorf("record device poll: %w", err)
	} else if n == 1 {
		return true, nil
	}

	if _, err := s.db.ExecContext(ctx,
		`UPDATE device_codes SET last_poll_at = $1 WHERE device_code_hash = $2`, now.UnixMilli(), deviceCodeHash); err != nil {
		return false, fmt.Errorf("record device poll: %w", err)
	}
	return false, nil
}

// decideDeviceRequest approves or denies a pending, unexpired request. It
// reports false when the request was no longer pending or had expired.
func (s *store) decideDeviceRequest(ctx context.Context, userCode, userID, status string, now time.Time) (bool, error) {
	result, err := s.db.ExecContext(ctx,
		`UPDATE device_codes SET status = $1, user_id = $2, decided_at = $3
		 WHERE user_code = $4 AND status = $5 AND expires_at > $3`,
		status, userID, now.UnixMilli(), userCode, deviceStatusPending)
	if err != nil {
		return false, fmt.Errorf("decide device request: %w", err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("decide device request: %w", err)
	}
	return n == 1, nil
}

// consumeDeviceRequest marks an approved request consumed. Exactly one of
// several concurrent polls gets true, so tokens are issued once.
func (s *store) consumeDeviceRequest(ctx context.Context, deviceCodeHash string, now time.Time) (bool, error) {
	result, err := s.db.ExecContext(ctx,
		`UPDATE device_codes SET status = $1 WHERE device_code_hash = $2 AND status = $3 AND expires_at > $4`,
		deviceStatusConsumed, deviceCodeHash, deviceStatusApproved, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("consume device request: %w", err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("consume device request: %w", err)
	}
	return n == 1, nil
}
