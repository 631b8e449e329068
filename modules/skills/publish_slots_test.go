package skills

import (
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/edge"
)

func TestPublishSlotsBoundConcurrentPublishes(t *testing.T) {
	m := &Module{publishSlots: make(chan struct{}, 2)}
	request := func() *edge.Request { return &edge.Request{Ctx: &fasthttp.RequestCtx{}} }

	first, err := m.acquirePublishSlot(request())
	if err != nil {
		t.Fatalf("first slot: %v", err)
	}
	second, err := m.acquirePublishSlot(request())
	if err != nil {
		t.Fatalf("second slot: %v", err)
	}

	busy := request()
	_, err = m.acquirePublishSlot(busy)
	apiErr, ok := err.(*edge.Error)
	if !ok || apiErr.Status != http.StatusTooManyRequests || apiErr.Code != edge.CodeRateLimited {
		t.Fatalf("third publish = %v, want 429 RATE_LIMITED", err)
	}
	if got := string(busy.Ctx.Response.Header.Peek("Retry-After")); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}

	first()
	third, err := m.acquirePublishSlot(request())
	if err != nil {
		t.Fatalf("slot after a release: %v", err)
	}
	second()
	third()
	if len(m.publishSlots) != 0 {
		t.Errorf("%d slots still taken after every release", len(m.publishSlots))
	}
}
