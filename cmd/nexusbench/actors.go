package main

import (
	"context"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
)

// Parameters of the actor memory measurement.
const (
	defaultActorCount = 100_000
	// actorIdleTimeout outlasts the measurement, so no actor passivates
	// before the heap is read.
	actorIdleTimeout = 24 * time.Hour
	// admissionTimeout bounds one admission; it is generous because the
	// machine may be busy.
	admissionTimeout = 30 * time.Second
	// admitWorkersPerCPU bounds how many admissions run at once.
	admitWorkersPerCPU = 8
	sessionPrefix      = "session-"
)

// actorMemory is the heap held by idle user actors.
type actorMemory struct {
	Actors int
	// HeapBytes is HeapAlloc after the admissions minus HeapAlloc before,
	// each read after a full garbage collection.
	HeapBytes int64
}

// BytesPerActor returns HeapBytes divided by the number of actors.
func (m actorMemory) BytesPerActor() float64 {
	if m.Actors == 0 {
		return 0
	}
	return float64(m.HeapBytes) / float64(m.Actors)
}

// liveSessions is a SessionSource in which session-ID is a live session of
// user ID, valid for an hour from the lookup.
type liveSessions struct{}

func (liveSessions) LookupSession(_ context.Context, sessionID string) (runtime.SessionState, error) {
	userID, ok := strings.CutPrefix(sessionID, sessionPrefix)
	if !ok {
		return runtime.SessionState{}, runtime.ErrSessionNotFound
	}
	return runtime.SessionState{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// measureActors admits one request for each of count distinct users, so
// each gets a live actor with its session and entitlement snapshot, and
// returns the heap those actors hold. The actors run in this process, on
// the same runtime.Users that the server uses, with the default tiers.
func measureActors(ctx context.Context, count int) (actorMemory, error) {
	cfg, err := configs.Load("", nil)
	if err != nil {
		return actorMemory{}, fmt.Errorf("load default config: %w", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer system.Shutdown()
	users := runtime.NewUsers(runtime.UsersOptions{
		System:                 system,
		Sessions:               liveSessions{},
		Resolver:               runtime.DefaultResolver{Tiers: cfg.Tiers},
		Logger:                 quiet,
		IdleTimeout:            actorIdleTimeout,
		SessionRecheckInterval: cfg.Actors.SessionRecheckInterval,
		AdmissionTimeout:       admissionTimeout,
	})
	defer users.Stop()

	before := heapAfterGC()
	if err := admitUsers(ctx, users, count); err != nil {
		return actorMemory{}, err
	}
	after := heapAfterGC()

	if live := users.Count(); live != count {
		return actorMemory{}, fmt.Errorf("expected %d live user actors, found %d", count, live)
	}
	return actorMemory{Actors: count, HeapBytes: int64(after) - int64(before)}, nil
}

// admitUsers admits one request for each of users user-0 … user-(count-1),
// on a bounded number of goroutines. It stops at the first error or when
// ctx is cancelled.
func admitUsers(ctx context.Context, users *runtime.Users, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	workers := admitWorkersPerCPU * goruntime.GOMAXPROCS(0)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				userID := "user-" + strconv.FormatInt(i, 10)
				if _, err := users.Admit(ctx, userID, sessionPrefix+userID); err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()

	if firstErr != nil {
		return fmt.Errorf("admit %d users: %w", count, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("admit %d users: %w", count, err)
	}
	return nil
}

// heapAfterGC runs a full garbage collection and returns HeapAlloc.
func heapAfterGC() uint64 {
	goruntime.GC()
	var stats goruntime.MemStats
	goruntime.ReadMemStats(&stats)
	return stats.HeapAlloc
}
