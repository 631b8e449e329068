package runtime_test

import (
	"context"
	"testing"

	"github.com/nexus-suite/nexus/runtime"
)

// restarterModule is a testModule whose workers restarted three times.
type restarterModule struct{ testModule }

func (m *restarterModule) WorkerRestarts() int { return 3 }

func init() {
	runtime.RegisterModule("tm_restarter", func() runtime.Module {
		return &restarterModule{testModule{name: "tm_restarter"}}
	})
}

func TestStatusesCountWorkerRestarts(t *testing.T) {
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{"tm_restarter": {"enabled": true}})
	if err := manager.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	if got := statusOf(manager, "tm_restarter").Restarts; got != 3 {
		t.Errorf("restarts = %d, want the 3 of the module's workers", got)
	}
	if got := statusOf(manager, "tm_base").Restarts; got != 0 {
		t.Errorf("restarts of a module without workers = %d, want 0", got)
	}
}
