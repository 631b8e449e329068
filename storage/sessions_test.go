package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

func TestSessionsRoundTrip(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sessions := storage.NewSessions(db)
		created := time.Date(2025, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

		if err := sessions.InsertUser(ctx, "u1", "ada@example.com", created); err != nil {
			t.Fatal(err)
		}
		record := storage.SessionRecord{
			ID:         "s1",
			UserID:     "u1",
			CreatedAt:  created,
			LastSeenAt: created,
			ExpiresAt:  created.Add(30 * 24 * time.Hour),
			UserAgent:  "nexus-cli/1.0",
			IP:         "127.0.0.1",
		}
		if err := sessions.Insert(ctx, record); err != nil {
			t.Fatal(err)
		}

		got, err := sessions.Lookup(ctx, "s1")
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if got.UserID != "u1" {
			t.Errorf("user id = %q, want u1", got.UserID)
		}
		if !got.CreatedAt.Equal(created) {
			t.Errorf("created = %v, want %v", got.CreatedAt, created)
		}
		if !got.ExpiresAt.Equal(record.ExpiresAt) {
			t.Errorf("expires = %v, want %v", got.ExpiresAt, record.ExpiresAt)
		}
		if got.RevokedAt != nil {
			t.Errorf("revoked = %v, want nil for a live session", got.RevokedAt)
		}
		if got.UserAgent != record.UserAgent || got.IP != record.IP {
			t.Errorf("user agent, ip = %q, %q; want %q, %q", got.UserAgent, got.IP, record.UserAgent, record.IP)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("created location = %v, want UTC", got.CreatedAt.Location())
		}

		revokedAt := created.Add(time.Hour)
		if err := sessions.Revoke(ctx, "s1", revokedAt); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if err := sessions.Revoke(ctx, "s1", revokedAt.Add(time.Hour)); err != nil {
			t.Errorf("second Revoke: %v", err)
		}
		got, err = sessions.Lookup(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt == nil {
			t.Fatal("revoked = nil after Revoke")
		}
		if !got.RevokedAt.Equal(revokedAt) {
			t.Errorf("revoked = %v, want the first revocation %v", got.RevokedAt, revokedAt)
		}
	})
}

func TestSessionsTouch(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sessions := storage.NewSessions(db)
		created := time.UnixMilli(1_700_000_000_000).UTC()
		insertSession(t, sessions, "u1", "s1", created)

		later := created.Add(time.Minute)
		if err := sessions.Touch(ctx, "s1", later); err != nil {
			t.Fatal(err)
		}
		if err := sessions.Touch(ctx, "s1", created); err != nil {
			t.Fatal(err)
		}

		got, err := sessions.Lookup(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeenAt.Equal(later) {
			t.Errorf("last seen = %v, want %v, the later of both touches", got.LastSeenAt, later)
		}
	})
}

func TestSessionsNotFound(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sessions := storage.NewSessions(db)
		now := time.Now()

		if _, err := sessions.Lookup(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Lookup = %v, want ErrNotFound", err)
		}
		if err := sessions.Revoke(ctx, "missing", now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Revoke = %v, want ErrNotFound", err)
		}
		if err := sessions.Touch(ctx, "missing", now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Touch = %v, want ErrNotFound", err)
		}
	})
}

func TestSessionsConstraints(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sessions := storage.NewSessions(db)
		now := time.Now()
		insertSession(t, sessions, "u1", "s1", now)

		if err := sessions.InsertUser(ctx, "u2", "u1@example.com", now); err == nil {
			t.Error("second user with the same email inserted")
		}
		duplicate := storage.SessionRecord{ID: "s1", UserID: "u1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now}
		if err := sessions.Insert(ctx, duplicate); err == nil {
			t.Error("second session with the same id inserted")
		}
		orphan := storage.SessionRecord{ID: "s2", UserID: "nobody", CreatedAt: now, LastSeenAt: now, ExpiresAt: now}
		if err := sessions.Insert(ctx, orphan); err == nil {
			t.Error("session of a missing user inserted, want a foreign key error")
		}
	})
}

func TestDeleteUserCascadesSessions(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		sessions := storage.NewSessions(db)
		insertSession(t, sessions, "u1", "s1", time.Now())

		if _, err := db.ExecContext(ctx, "DELETE FROM users WHERE id = $1", "u1"); err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Lookup(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Lookup after deleting the user = %v, want ErrNotFound", err)
		}
	})
}

func TestRedactedHasNoPassword(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		redacted := db.Redacted()
		if !strings.HasPrefix(redacted, string(db.Dialect)) {
			t.Errorf("Redacted = %q, want it to start with %q", redacted, db.Dialect)
		}
		if strings.Contains(redacted, "password") {
			t.Errorf("Redacted = %q contains a password parameter", redacted)
		}
	})
}

func insertSession(t *testing.T, sessions *storage.Sessions, userID, sessionID string, at time.Time) {
	t.Helper()
	ctx := context.Background()

	if err := sessions.InsertUser(ctx, userID, userID+"@example.com", at); err != nil {
		t.Fatal(err)
	}
	record := storage.SessionRecord{ID: sessionID, UserID: userID, CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		t.Fatal(err)
	}
}
