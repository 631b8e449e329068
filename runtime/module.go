// Package runtime is the actor-based core of nexus: the Proto.Actor system,
// the module registry and lifecycle, the supervisor actor of each module
// that feeds /status, and the per-user actors that admit requests.
package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/kv"
)

// ModuleInfo identifies a module and the modules it needs.
type ModuleInfo struct {
	// Name is the module's key under "modules" in the config, such as "auth".
	Name string
	// Title is the component name shown on /status, such as "Authentication".
	Title string
	// Requires names the modules that must be enabled for this one to start.
	Requires []string
}

// Module is one API section. The registry drives each enabled module through
// Decode → Provision → Validate → Start, and Stop when it is disabled or the
// process ends. Stop must be safe after a Provision that failed halfway and
// after a Start that was never called.
type Module interface {
	Info() ModuleInfo
	// Decode reads the module's config section strictly: an unknown key or a
	// value of the wrong type is an error that names the key. The "enabled"
	// key has been removed. section is empty, never nil, when the config has none.
	Decode(section map[string]any) error
	// Provision opens what the module needs from the host.
	Provision(ctx context.Context, host *Host) error
	// Validate checks the decoded and provisioned module before it starts.
	Validate() error
	// Start begins serving. A module without background work returns nil.
	Start(ctx context.Context) error
	// Stop releases everything that Provision and Start acquired.
	Stop(ctx context.Context) error
}

// HealthProber is implemented by modules that can report their health.
// The supervisor calls Probe on an interval; an error marks the module
// degraded on /status.
type HealthProber interface {
	Probe(ctx context.Context) error
}

// Host is the set of shared services of the process that a module receives at provision.
type Host struct {
	// Config is the configuration the process started with. A module reads
	// its own options in Decode, which a reload calls again.
	Config *configs.Config
	Logger *slog.Logger
	DB     *storage.DB
	KV     kv.Store
	Clock  clock.Clock
	Users  *Users
	Keys   *keyring.Keyring
	// MasterKey seals secrets at rest, with keyring.Seal and keyring.Open.
	MasterKey []byte
	// Services holds what modules offer each other; see Provide and Lookup.
	Services *Services
	// System is the process's actor system, for modules that run actors of
	// their own. It may be nil in tests that build a Host by hand.
	System *actor.ActorSystem
}

// WorkerRestarter is implemented by modules that supervise workers of
// their own, such as the plugin processes of MCP hosting. The restarts of
// those workers count as the module's restarts on /status.
type WorkerRestarter interface {
	WorkerRestarts() int
}

// ModuleFactory returns a new, unconfigured module value.
type ModuleFactory func() Module

var (
	registryMu sync.RWMutex
	registry   = map[string]ModuleFactory{}
)

// RegisterModule adds a module to the registry. Modules call it from init;
// registering one name twice panics.
func RegisterModule(name string, factory ModuleFactory) {
	registryMu.Lock()
	defer registryMu.Unlock()

	if _, ok := registry[name]; ok {
		panic(fmt.Sprintf("runtime: module %q registered twice", name))
	}
	registry[name] = factory
}

// RegisteredModules returns the names of all registered modules, sorted.
func RegisteredModules() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()

	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// NewModule returns a fresh value of the named module.
func NewModule(name string) (Module, bool) {
	registryMu.RLock()
	factory, ok := registry[name]
	registryMu.RUnlock()

	if !ok {
		return nil, false
	}
	return factory(), true
}
