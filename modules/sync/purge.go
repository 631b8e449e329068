package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// purgeUsersPerQuery is how many users with expired tombstones one query
// of the purge returns; the purge repeats it until none are left.
const purgeUsersPerQuery = 100

// Run purges expired tombstones and idempotency records every
// modules.sync.purge_interval on the injected clock, until the supervisor
// cancels ctx. The purge runs inside the clock's timer function, so a test
// that advances a fake clock past the interval returns after the purge has
// finished. A failed purge is logged and tried again at the next interval.
func (m *Module) Run(ctx context.Context) error {
	for {
		done := make(chan struct{})
		timer := m.clock.AfterFunc(m.opts.PurgeInterval, func() {
			defer close(done)
			if err := m.purge(ctx); err != nil && ctx.Err() == nil {
				m.logger.Error("sync purge failed", slog.String("error", err.Error()))
			}
		})

		select {
		case <-ctx.Done():
			if !timer.Stop() {
				<-done
			}
			return nil
		case <-done:
		}
	}
}

// purge deletes the tombstones last changed more than
// modules.sync.tombstone_retention ago, user by user under each user's
// write lock, and the idempotency records older than
// modules.sync.idempotency_retention.
func (m *Module) purge(ctx context.Context) error {
	now := m.clock.Now()
	cutoff := now.Add(-m.opts.TombstoneRetention)

	var purgedUsers, purgedTombstones int
	var errs []error
	failed := map[string]bool{}
	for {
		users, err := m.store.usersWithExpiredTombstones(ctx, cutoff, purgeUsersPerQuery+len(failed))
		if err != nil {
			errs = append(errs, err)
			break
		}
		pending := 0
		for _, userID := range users {
			if failed[userID] {
				continue
			}
			pending++
			var purged int
			err := m.store.write(ctx, userID, now, func(w *writeTx) error {
				var purgeErr error
				purged, purgeErr = w.purgeTombstones(ctx, cutoff)
				return purgeErr
			})
			if err != nil {
				failed[userID] = true
				errs = append(errs, fmt.Errorf("user %s: %w", userID, err))
				continue
			}
			purgedUsers++
			purgedTombstones += purged
		}
		if pending == 0 || ctx.Err() != nil {
			break
		}
	}

	records, err := m.store.purgeIdempotency(ctx, now.Add(-m.opts.IdempotencyRetention))
	if err != nil {
		errs = append(errs, err)
	}
	if purgedTombstones > 0 || records > 0 {
		m.logger.Info("sync purge finished", slog.Int("users", purgedUsers),
			slog.Int("tombstones", purgedTombstones), slog.Int64("idempotency_records", records))
	}
	return errors.Join(errs...)
}
