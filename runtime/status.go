package runtime

import "time"

// ModuleState is a module's lifecycle state as /status reports it.
type ModuleState string

// The states of a module.
const (
	StateDisabled   ModuleState = "disabled"
	StateStarting   ModuleState = "starting"
	StateRunning    ModuleState = "running"
	StateDegraded   ModuleState = "degraded"
	StateRestarting ModuleState = "restarting"
	StateFailed     ModuleState = "failed"
	StateStopped    ModuleState = "stopped"
)

// ModuleEvent is a supervision event: started, restarting, failed or stopped.
type ModuleEvent string

// The supervision events.
const (
	EventStarted    ModuleEvent = "started"
	EventRestarting ModuleEvent = "restarting"
	EventFailed     ModuleEvent = "failed"
	EventStopped    ModuleEvent = "stopped"
)

// ModuleStatus is a snapshot of one module's health.
type ModuleStatus struct {
	Name     string
	Title    string
	State    ModuleState
	Restarts int
	// LastError is the latest start, run or probe error; it is for logs and
	// operators, not for the public status page.
	LastError string
	UpdatedAt time.Time
}

// Component returns the Statuspage component status for the module's state:
// operational, degraded_performance, partial_outage, major_outage, or disabled.
func (s ModuleStatus) Component() string {
	switch s.State {
	case StateRunning:
		return "operational"
	case StateDegraded, StateStarting:
		return "degraded_performance"
	case StateRestarting:
		return "partial_outage"
	case StateFailed:
		return "major_outage"
	default:
		return "disabled"
	}
}

// Indicator returns the Statuspage overall indicator for a set of modules:
// none, minor, major or critical, from the worst component.
func Indicator(statuses []ModuleStatus) string {
	worst := 0
	for _, s := range statuses {
		level := 0
		switch s.Component() {
		case "degraded_performance":
			level = 1
		case "partial_outage":
			level = 2
		case "major_outage":
			level = 3
		}
		if level > worst {
			worst = level
		}
	}
	return [...]string{"none", "minor", "major", "critical"}[worst]
}
