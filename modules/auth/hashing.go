package auth

import (
	"context"
	"errors"
	"runtime"
	"strconv"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/modules/auth/password"
)

// hashSlots bounds the argon2id computations that run at once. Each one
// holds memory_kib of memory (19 MiB by default), so without a bound a
// burst of sign-ins would grow the process by that much per request.
type hashSlots chan struct{}

func newHashSlots(limit int) hashSlots {
	if limit <= 0 {
		limit = 2 * runtime.GOMAXPROCS(0)
	}
	return make(hashSlots, limit)
}

// hashingBusy is the 429 of a request that found no free slot before its
// deadline: the server is saturated, so the client should retry shortly.
func hashingBusy(r *edge.Request) error {
	r.Ctx.Response.Header.Set("Retry-After", strconv.Itoa(1))
	return edge.NewError(edge.CodeRateLimited, "too many password checks in progress; retry shortly",
		map[string]any{"retry_after": 1})
}

// isBusy reports whether err is the error that hashingBusy returns.
func isBusy(err error) bool {
	var apiErr *edge.Error
	return errors.As(err, &apiErr) && apiErr.Code == edge.CodeRateLimited
}

// acquire waits for a slot until ctx ends.
func (s hashSlots) acquire(ctx context.Context) bool {
	select {
	case s <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s hashSlots) release() { <-s }

// hash computes a password hash in a slot.
func (m *Module) hash(r *edge.Request, plain string) (string, error) {
	if !m.slots.acquire(r.Context()) {
		return "", hashingBusy(r)
	}
	defer m.slots.release()
	return password.Hash(plain, m.params)
}

// verify checks a password against its stored hash in a slot. When no
// slot frees up in time, it returns the 429 of hashingBusy, which isBusy
// distinguishes from the error of an unreadable hash.
func (m *Module) verify(r *edge.Request, plain, encoded string) (bool, error) {
	if !m.slots.acquire(r.Context()) {
		return false, hashingBusy(r)
	}
	defer m.slots.release()
	return password.Verify(plain, encoded)
}

// dummyVerify does the work of a verification for an unknown email, in a slot.
func (m *Module) dummyVerify(r *edge.Request, plain string) error {
	if !m.slots.acquire(r.Context()) {
		return hashingBusy(r)
	}
	defer m.slots.release()
	password.DummyVerify(plain, m.params)
	return nil
}
