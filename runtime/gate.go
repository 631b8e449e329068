package runtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Gate admits requests to one module's routes while the module is enabled
// and counts those in flight, so a reload can disable the module and wait
// for its requests to finish before stopping it.
type Gate struct {
	open     atomic.Bool
	inFlight atomic.Int64
}

// Enter reports whether the module is enabled and, when it is, counts the
// request as in flight until Leave is called.
func (g *Gate) Enter() bool {
	g.inFlight.Add(1)
	if g.open.Load() {
		return true
	}
	g.inFlight.Add(-1)
	return false
}

// Leave ends a request that Enter admitted.
func (g *Gate) Leave() { g.inFlight.Add(-1) }

// Open lets new requests in.
func (g *Gate) Open() { g.open.Store(true) }

// IsOpen reports whether new requests are let in.
func (g *Gate) IsOpen() bool { return g.open.Load() }

// InFlight returns the number of requests inside the gate.
func (g *Gate) InFlight() int64 { return g.inFlight.Load() }

// Close stops new requests and waits until those in flight have left or
// ctx is done, whichever comes first.
func (g *Gate) Close(ctx context.Context) error {
	g.open.Store(false)

	const pollInterval = 5 * time.Millisecond
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for g.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}

// Gates holds one gate per registered module name.
type Gates struct {
	mu    sync.RWMutex
	gates map[string]*Gate
}

// Get returns the gate of module, creating a closed one on first use.
func (g *Gates) Get(module string) *Gate {
	g.mu.RLock()
	gate, ok := g.gates[module]
	g.mu.RUnlock()
	if ok {
		return gate
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates == nil {
		g.gates = map[string]*Gate{}
	}
	if gate, ok = g.gates[module]; !ok {
		gate = &Gate{}
		g.gates[module] = gate
	}
	return gate
}
