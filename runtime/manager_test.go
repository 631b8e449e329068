package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// testModule records its lifecycle calls; its behaviour is set through the
// package-level knobs below, because the registry creates the values.
type testModule struct {
	name     string
	requires []string

	mu       sync.Mutex
	calls    []string
	greeting string
}

var (
	failProvision atomic.Bool
	runFailures   atomic.Int64
	probeFailing  atomic.Bool
)

func (m *testModule) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: m.name, Title: strings.ToUpper(m.name), Requires: m.requires}
}

func (m *testModule) record(call string) {
	m.mu.Lock()
	m.calls = append(m.calls, call)
	m.mu.Unlock()
}

func (m *testModule) history() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.calls, ",")
}

func (m *testModule) Decode(section map[string]any) error {
	m.record("decode")
	for key, value := range section {
		if key != "greeting" {
			return fmt.Errorf("modules.%s.%s: unknown option", m.name, key)
		}
		m.greeting, _ = value.(string)
	}
	return nil
}

func (m *testModule) Provision(context.Context, *runtime.Host) error {
	m.record("provision")
	if m.name == "tm_worker" && failProvision.Load() {
		return errors.New("cannot open the worker's queue")
	}
	return nil
}

func (m *testModule) Validate() error             { m.record("validate"); return nil }
func (m *testModule) Start(context.Context) error { m.record("start"); return nil }
func (m *testModule) Stop(context.Context) error  { m.record("stop"); return nil }

func (m *testModule) Probe(context.Context) error {
	if m.name == "tm_worker" && probeFailing.Load() {
		return errors.New("queue unreachable")
	}
	return nil
}

// Run fails runFailures times, then blocks until cancelled.
func (m *testModule) Run(ctx context.Context) error {
	if m.name == "tm_worker" && runFailures.Add(-1) >= 0 {
		return errors.New("worker crashed")
	}
	<-ctx.Done()
	return nil
}

func registerTestModule(name string, requires ...string) {
	runtime.RegisterModule(name, func() runtime.Module {
		return &testModule{name: name, requires: requires}
	})
}

func init() {
	registerTestModule("tm_base")
	registerTestModule("tm_worker", "tm_base")
}

func moduleOf(t *testing.T, manager *runtime.Manager, name string) *testModule {
	t.Helper()
	module, ok := manager.Module(name)
	if !ok {
		t.Fatalf("module %s is not registered", name)
	}
	return module.(*testModule)
}

func newManager(t *testing.T) *runtime.Manager {
	t.Helper()
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	manager, err := runtime.NewManager(runtime.ManagerOptions{
		System:        system,
		Host:          &runtime.Host{Clock: clock.System{}, Config: &configs.Config{}},
		Gates:         &runtime.Gates{},
		ProbeInterval: 20 * time.Millisecond,
		DrainTimeout:  time.Second,
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { manager.Stop(context.Background()) })
	return manager
}

func modulesConfig(sections map[string]map[string]any) *configs.Config {
	return &configs.Config{Modules: sections}
}

func statusOf(manager *runtime.Manager, name string) runtime.ModuleStatus {
	for _, status := range manager.Statuses() {
		if status.Name == name {
			return status
		}
	}
	return runtime.ModuleStatus{}
}

func waitForState(t *testing.T, manager *runtime.Manager, name string, want runtime.ModuleState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if statusOf(manager, name).State == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("module %s state = %s, want %s", name, statusOf(manager, name).State, want)
}

func TestApplyRunsLifecycleInOrder(t *testing.T) {
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{
		"tm_base":   {"enabled": true, "greeting": "hello"},
		"tm_worker": {"enabled": true},
	})

	if err := manager.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	base := moduleOf(t, manager, "tm_base")
	if got := base.history(); got != "decode,provision,validate,start" {
		t.Errorf("lifecycle = %s", got)
	}
	if base.greeting != "hello" {
		t.Errorf("greeting = %q, want hello", base.greeting)
	}
	if got := statusOf(manager, "tm_worker").Component(); got != "operational" {
		t.Errorf("worker component = %s, want operational", got)
	}
}

func TestApplyNamesMissingDependency(t *testing.T) {
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{
		"tm_base":   {"enabled": false},
		"tm_worker": {"enabled": true},
	})

	err := manager.Apply(context.Background(), cfg)
	if err == nil {
		t.Fatal("Apply succeeded with a disabled dependency")
	}
	if !strings.Contains(err.Error(), "module tm_worker requires module tm_base, which is disabled") {
		t.Errorf("error = %q, want it to name both modules", err)
	}
}

func TestApplyRejectsUnknownModuleAndBadSection(t *testing.T) {
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{
		"tm_base":  {"enabled": true, "colour": "blue"},
		"tm_ghost": {"enabled": true},
	})

	err := manager.Apply(context.Background(), cfg)
	if err == nil {
		t.Fatal("Apply succeeded")
	}
	if !strings.Contains(err.Error(), "modules.tm_ghost: unknown module") {
		t.Errorf("error = %q, want the unknown module named", err)
	}
	if !strings.Contains(err.Error(), "modules.tm_base.colour: unknown option") {
		t.Errorf("error = %q, want the unknown option named", err)
	}
	if got := statusOf(manager, "tm_base").State; got != runtime.StateDisabled {
		t.Errorf("tm_base state = %s, want disabled: a rejected config changes nothing", got)
	}
}

func TestFailedProvisionIsStoppedAndReported(t *testing.T) {
	failProvision.Store(true)
	defer failProvision.Store(false)
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{
		"tm_base":   {"enabled": true},
		"tm_worker": {"enabled": true},
	})

	err := manager.Apply(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "cannot open the worker's queue") {
		t.Fatalf("err = %v, want the provision error", err)
	}
	if got := moduleOf(t, manager, "tm_worker").history(); got != "decode,provision,stop" {
		t.Errorf("lifecycle = %s, want stop after the failed provision", got)
	}
	status := statusOf(manager, "tm_worker")
	if status.Component() != "major_outage" {
		t.Errorf("component = %s, want major_outage", status.Component())
	}
	if statusOf(manager, "tm_base").Component() != "operational" {
		t.Error("tm_base should keep running")
	}
}

func TestSupervisorRestartsFailedRun(t *testing.T) {
	runFailures.Store(2)
	defer runFailures.Store(0)
	var events sync.Map
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	manager, err := runtime.NewManager(runtime.ManagerOptions{
		System:        system,
		Host:          &runtime.Host{Clock: clock.System{}, Config: &configs.Config{}},
		Gates:         &runtime.Gates{},
		ProbeInterval: time.Hour,
		OnEvent: func(module string, event runtime.ModuleEvent) {
			counter, _ := events.LoadOrStore(module+"/"+string(event), new(atomic.Int64))
			counter.(*atomic.Int64).Add(1)
		},
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	defer manager.Stop(context.Background())

	cfg := modulesConfig(map[string]map[string]any{"tm_base": {"enabled": true}, "tm_worker": {"enabled": true}})
	if err := manager.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for statusOf(manager, "tm_worker").Restarts < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	waitForState(t, manager, "tm_worker", runtime.StateRunning)
	if got := statusOf(manager, "tm_worker").Restarts; got != 2 {
		t.Errorf("restarts = %d, want 2", got)
	}
	restarting, _ := events.Load("tm_worker/restarting")
	if restarting == nil || restarting.(*atomic.Int64).Load() != 2 {
		t.Errorf("restarting events = %v, want 2", restarting)
	}
}

func TestProbeFailureDegradesModule(t *testing.T) {
	manager := newManager(t)
	cfg := modulesConfig(map[string]map[string]any{"tm_base": {"enabled": true}, "tm_worker": {"enabled": true}})
	if err := manager.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	probeFailing.Store(true)
	waitForState(t, manager, "tm_worker", runtime.StateDegraded)
	if got := runtime.Indicator(manager.Statuses()); got != "minor" {
		t.Errorf("indicator = %s, want minor", got)
	}

	probeFailing.Store(false)
	waitForState(t, manager, "tm_worker", runtime.StateRunning)
	if got := runtime.Indicator(manager.Statuses()); got != "none" {
		t.Errorf("indicator = %s, want none", got)
	}
}

func TestReloadDisablesModuleAfterDrain(t *testing.T) {
	system := actor.NewActorSystem()
	t.Cleanup(system.Shutdown)
	gates := &runtime.Gates{}
	manager, err := runtime.NewManager(runtime.ManagerOptions{
		System: system, Gates: gates, DrainTimeout: 2 * time.Second,
		Host: &runtime.Host{Clock: clock.System{}, Config: &configs.Config{}},
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	defer manager.Stop(context.Background())
	enabled := modulesConfig(map[string]map[string]any{"tm_base": {"enabled": true}, "tm_worker": {"enabled": true}})
	if err := manager.Apply(context.Background(), enabled); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	gate := gates.Get("tm_worker")
	if !gate.Enter() {
		t.Fatal("gate closed while the module is enabled")
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		close(released)
		gate.Leave()
	}()

	disabled := modulesConfig(map[string]map[string]any{"tm_base": {"enabled": true}, "tm_worker": {"enabled": false}})
	if err := manager.Apply(context.Background(), disabled); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	select {
	case <-released:
	default:
		t.Fatal("Apply stopped the module before its in-flight request left")
	}
	if gate.Enter() {
		t.Error("gate admits requests to a disabled module")
	}
	if got := statusOf(manager, "tm_worker").Component(); got != "disabled" {
		t.Errorf("component = %s, want disabled", got)
	}
	if got := statusOf(manager, "tm_base").Component(); got != "operational" {
		t.Errorf("tm_base component = %s, want operational", got)
	}
}
