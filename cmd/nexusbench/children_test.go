package main

import (
	"context"
	"io"
	"testing"
	"time"
)

func TestChildrenStopAll(t *testing.T) {
	var procs children
	sleeper, err := procs.start(context.Background(), "sleep", "sleep", []string{"30"}, nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("start: %v", err)
	}

	procs.stopAll()

	if !sleeper.exited() {
		t.Error("child still running after stopAll")
	}
}

func TestChildCancelledContext(t *testing.T) {
	var procs children
	ctx, cancel := context.WithCancel(context.Background())
	sleeper, err := procs.start(ctx, "sleep", "sleep", []string{"30"}, nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("start: %v", err)
	}

	cancel()

	select {
	case <-sleeper.done:
	case <-time.After(cancelTimeout + 5*time.Second):
		t.Fatal("child still running after its context was cancelled")
	}
}

func TestChildWaitExitStatus(t *testing.T) {
	var procs children
	failing, err := procs.start(context.Background(), "false", "false", nil, nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("start: %v", err)
	}

	if err := failing.wait(); err == nil {
		t.Error("wait() = nil for exit status 1, want an error")
	}
}
