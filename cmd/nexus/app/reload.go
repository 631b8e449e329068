package app

import (
	"reflect"

	"github.com/nexus-suite/nexus/configs"
)

// restartOnlyChanges lists the top-level config sections that differ
// between current and next, other than "modules": a reload does not apply
// them, because the listener, the pools and the keys are opened once.
func restartOnlyChanges(current, next *configs.Config) []string {
	sections := []struct {
		key     string
		old, nu any
	}{
		{"server", current.Server, next.Server},
		{"data_dir", current.DataDir, next.DataDir},
		{"database", current.Database, next.Database},
		{"redis", current.Redis, next.Redis},
		{"log", current.Log, next.Log},
		{"security", current.Security, next.Security},
		{"tokens", current.Tokens, next.Tokens},
		{"rate_limit", current.RateLimit, next.RateLimit},
		{"actors", current.Actors, next.Actors},
		{"tiers", current.Tiers, next.Tiers},
	}
	var changed []string
	for _, section := range sections {
		if !reflect.DeepEqual(section.old, section.nu) {
			changed = append(changed, section.key)
		}
	}
	return changed
}
