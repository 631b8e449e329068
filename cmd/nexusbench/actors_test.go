package main

import (
	"context"
	"testing"
)

func TestMeasureActors(t *testing.T) {
	memory, err := measureActors(context.Background(), 200)
	if err != nil {
		t.Fatalf("measureActors: %v", err)
	}

	if memory.Actors != 200 {
		t.Errorf("Actors = %d, want 200", memory.Actors)
	}
	if memory.HeapBytes <= 0 {
		t.Errorf("HeapBytes = %d, want the actors' heap above zero", memory.HeapBytes)
	}
}

func TestMeasureActorsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := measureActors(ctx, 200)

	if err == nil {
		t.Error("measureActors with a cancelled context returned no error")
	}
}

func TestLiveSessions(t *testing.T) {
	state, err := liveSessions{}.LookupSession(context.Background(), "session-user-7")
	if err != nil {
		t.Fatalf("LookupSession: %v", err)
	}
	if state.UserID != "user-7" {
		t.Errorf("UserID = %q, want user-7", state.UserID)
	}

	_, err = liveSessions{}.LookupSession(context.Background(), "other-7")
	if err == nil {
		t.Error("LookupSession of an unknown session id returned no error")
	}
}
