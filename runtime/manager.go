package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/configs"
)

// ManagerOptions configures the module manager.
type ManagerOptions struct {
	System *actor.ActorSystem
	Host   *Host
	Gates  *Gates
	Logger *slog.Logger
	// ProbeInterval is how often each supervisor probes its module's health.
	ProbeInterval time.Duration
	// DrainTimeout bounds how long a module being stopped waits for its
	// in-flight requests.
	DrainTimeout time.Duration
	// OnEvent, when set, is called for every supervision event.
	OnEvent func(module string, event ModuleEvent)
}

// Manager drives every registered module through its lifecycle and keeps
// one supervisor actor per enabled module. It holds one value per
// registered module for the life of the process, so routes are mounted
// once. A module that a reload disables and enables again goes through the
// lifecycle again on the same value.
type Manager struct {
	opts    ManagerOptions
	modules map[string]Module
	order   []string // registered names, dependencies first

	mu       sync.Mutex // serialises Apply and Stop
	running  map[string]*runningModule
	statusMu sync.RWMutex
	statuses map[string]*ModuleStatus
	sections map[string]map[string]any // guarded by statusMu
}

type runningModule struct {
	section    map[string]any
	supervisor *actor.PID
}

// NewManager creates a value of every registered module and orders them so
// that each comes after the modules it requires.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 10 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 15 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{
		opts:     opts,
		modules:  map[string]Module{},
		running:  map[string]*runningModule{},
		statuses: map[string]*ModuleStatus{},
		sections: map[string]map[string]any{},
	}

	for _, name := range RegisteredModules() {
		module, _ := NewModule(name)
		if got := module.Info().Name; got != name {
			return nil, fmt.Errorf("module registered as %q reports the name %q", name, got)
		}
		m.modules[name] = module
		m.statuses[name] = &ModuleStatus{Name: name, Title: module.Info().Title, State: StateDisabled, UpdatedAt: opts.Host.Clock.Now()}
	}

	order, err := dependencyOrder(m.modules)
	if err != nil {
		return nil, err
	}
	m.order = order
	return m, nil
}

// Module returns the value of a registered module.
func (m *Manager) Module(name string) (Module, bool) {
	module, ok := m.modules[name]
	return module, ok
}

// Names returns the registered module names, dependencies first.
func (m *Manager) Names() []string { return append([]string(nil), m.order...) }

// Statuses returns the status of every registered module, sorted by name.
// The restarts of a module that implements WorkerRestarter include those of
// its workers.
func (m *Manager) Statuses() []ModuleStatus {
	m.statusMu.RLock()
	defer m.statusMu.RUnlock()

	out := make([]ModuleStatus, 0, len(m.statuses))
	for _, s := range m.statuses {
		status := *s
		if restarter, ok := m.modules[s.Name].(WorkerRestarter); ok {
			status.Restarts += restarter.WorkerRestarts()
		}
		out = append(out, status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CheckConfig reports the problems of cfg's module set without changing
// anything; see CheckModules.
func (m *Manager) CheckConfig(cfg *configs.Config) error { return CheckModules(cfg) }

// CheckModules reports the problems of cfg's module set: unknown module
// names, a module whose required module is disabled, and module sections
// that fail to decode. It decodes into fresh module values, so running
// modules are not touched.
func CheckModules(cfg *configs.Config) error {
	var problems []string
	registered := RegisteredModules()

	for name := range cfg.Modules {
		if _, ok := NewModule(name); !ok {
			problems = append(problems, fmt.Sprintf("modules.%s: unknown module; registered modules: %s",
				name, strings.Join(registered, ", ")))
		}
	}

	for _, name := range registered {
		if !moduleEnabled(cfg, name) {
			continue
		}
		probe, _ := NewModule(name)
		for _, required := range probe.Info().Requires {
			if !moduleEnabled(cfg, required) {
				problems = append(problems, fmt.Sprintf("modules.%s: module %s requires module %s, which is disabled",
					name, name, required))
			}
		}
		if err := probe.Decode(moduleSection(cfg, name)); err != nil {
			problems = append(problems, err.Error())
		}
	}

	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

// Apply brings the running module set in line with cfg: it stops modules
// that are disabled or whose section changed, then starts the enabled ones
// that are not running, dependencies first. The config is checked first
// and, when it has problems, nothing changes. A module that fails to start
// is left stopped, marked failed, and its error is returned.
func (m *Manager) Apply(ctx context.Context, cfg *configs.Config) error {
	if err := m.CheckConfig(cfg); err != nil {
		return err
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	for i := len(m.order) - 1; i >= 0; i-- {
		name := m.order[i]
		running, ok := m.running[name]
		if !ok {
			continue
		}
		if moduleEnabled(cfg, name) && reflect.DeepEqual(running.section, moduleSection(cfg, name)) {
			continue
		}
		m.stopModule(ctx, name, StateDisabled)
	}

	var errs []error
	for _, name := range m.order {
		if _, ok := m.running[name]; ok || !moduleEnabled(cfg, name) {
			continue
		}
		if err := m.startModule(ctx, name, moduleSection(cfg, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops every running module, dependents first.
func (m *Manager) Stop(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()

	for i := len(m.order) - 1; i >= 0; i-- {
		if _, ok := m.running[m.order[i]]; ok {
			m.stopModule(ctx, m.order[i], StateStopped)
		}
	}
}

func (m *Manager) startModule(ctx context.Context, name string, section map[string]any) error {
	module := m.modules[name]
	logger := m.opts.Logger.With(slog.String("module", name))
	m.setState(name, StateStarting, "")
	m.statusMu.Lock()
	m.sections[name] = section
	m.statusMu.Unlock()

	err := m.runLifecycle(ctx, module, section)
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), m.opts.DrainTimeout)
		if stopErr := module.Stop(stopCtx); stopErr != nil {
			logger.Error("stop after failed start failed", slog.String("error", stopErr.Error()))
		}
		cancel()
		m.setState(name, StateFailed, err.Error())
		m.emit(name, EventFailed)
		logger.Error("module failed to start", slog.String("error", err.Error()))
		return fmt.Errorf("module %s: %w", name, err)
	}

	props := actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{manager: m, name: name, module: module, logger: logger}
	})
	pid, err := m.opts.System.Root.SpawnNamed(props, "module/"+name)
	if err != nil {
		return fmt.Errorf("module %s: spawn supervisor: %w", name, err)
	}
	m.running[name] = &runningModule{section: section, supervisor: pid}
	m.opts.Gates.Get(name).Open()
	m.setState(name, StateRunning, "")
	m.emit(name, EventStarted)
	logger.Info("module started", slog.String("title", module.Info().Title))
	return nil
}

func (m *Manager) runLifecycle(ctx context.Context, module Module, section map[string]any) error {
	if err := module.Decode(section); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	if err := module.Provision(ctx, m.opts.Host); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if err := module.Validate(); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	if err := module.Start(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// stopModule closes the module's gate, waits for its in-flight requests,
// stops its supervisor and then the module itself.
func (m *Manager) stopModule(ctx context.Context, name string, final ModuleState) {
	running := m.running[name]
	delete(m.running, name)
	logger := m.opts.Logger.With(slog.String("module", name))

	drainCtx, cancel := context.WithTimeout(ctx, m.opts.DrainTimeout)
	defer cancel()
	if err := m.opts.Gates.Get(name).Close(drainCtx); err != nil {
		logger.Warn("in-flight requests did not finish before the module stopped",
			slog.Int64("in_flight", m.opts.Gates.Get(name).InFlight()))
	}

	if err := m.opts.System.Root.StopFuture(running.supervisor).Wait(); err != nil {
		logger.Warn("supervisor did not confirm its stop", slog.String("error", err.Error()))
	}
	if err := m.modules[name].Stop(drainCtx); err != nil {
		logger.Error("module stop failed", slog.String("error", err.Error()))
	}
	m.setState(name, final, "")
	m.emit(name, EventStopped)
	logger.Info("module stopped")
}

func (m *Manager) setState(name string, state ModuleState, lastError string) {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()

	status := m.statuses[name]
	status.State = state
	if lastError != "" {
		status.LastError = lastError
	}
	status.UpdatedAt = m.opts.Host.Clock.Now()
}

func (m *Manager) countRestart(name string) {
	m.statusMu.Lock()
	m.statuses[name].Restarts++
	m.statusMu.Unlock()
}

func (m *Manager) emit(name string, event ModuleEvent) {
	if m.opts.OnEvent != nil {
		m.opts.OnEvent(name, event)
	}
}

func moduleEnabled(cfg *configs.Config, name string) bool {
	enabled, _ := cfg.Modules[name]["enabled"].(bool)
	return enabled
}

// moduleSection returns a copy of the module's section without "enabled".
func moduleSection(cfg *configs.Config, name string) map[string]any {
	section := map[string]any{}
	for key, value := range cfg.Modules[name] {
		if key != "enabled" {
			section[key] = value
		}
	}
	return section
}

// dependencyOrder sorts module names so that each follows the modules it
// requires, and rejects unknown requirements and cycles.
func dependencyOrder(modules map[string]Module) ([]string, error) {
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	sort.Strings(names)

	const (
		unvisited = iota
		visiting
		done
	)
	marks := map[string]int{}
	var order []string
	var visit func(name, from string) error
	visit = func(name, from string) error {
		module, ok := modules[name]
		if !ok {
			return fmt.Errorf("module %s requires module %s, which is not registered", from, name)
		}
		switch marks[name] {
		case visiting:
			return fmt.Errorf("modules %s and %s require each other", from, name)
		case done:
			return nil
		}
		marks[name] = visiting
		for _, required := range module.Info().Requires {
			if err := visit(required, name); err != nil {
				return err
			}
		}
		marks[name] = done
		order = append(order, name)
		return nil
	}
	for _, name := range names {
		if err := visit(name, name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (m *Manager) state(name string) ModuleState {
	m.statusMu.RLock()
	defer m.statusMu.RUnlock()
	return m.statuses[name].State
}

// sectionOf returns the section the running module was started with.
func (m *Manager) sectionOf(name string) map[string]any {
	m.statusMu.RLock()
	defer m.statusMu.RUnlock()
	return m.sections[name]
}
