package auth

import (
	"context"
	"testing"
	"time"
)

func TestHashSlotsBoundConcurrency(t *testing.T) {
	slots := newHashSlots(2)
	ctx := context.Background()
	if !slots.acquire(ctx) || !slots.acquire(ctx) {
		t.Fatal("the first two acquisitions failed")
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if slots.acquire(short) {
		t.Fatal("a third acquisition succeeded with two slots taken")
	}

	slots.release()
	if !slots.acquire(ctx) {
		t.Fatal("acquisition after a release failed")
	}
}

func TestHashSlotsDefaultToTwicePerCPU(t *testing.T) {
	if got := cap(newHashSlots(0)); got < 2 {
		t.Errorf("default slots = %d, want at least 2", got)
	}
}
