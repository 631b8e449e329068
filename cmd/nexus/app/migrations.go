package app

import (
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// MigrationSets returns the core migrations and those of every registered
// module that has any, enabled or not, so the schema does not depend on
// which modules an operator turns on.
func MigrationSets() []storage.MigrationSet {
	sets := []storage.MigrationSet{storage.CoreMigrations}
	for _, name := range runtime.RegisteredModules() {
		module, _ := runtime.NewModule(name)
		if owner, ok := module.(interface{ Migrations() storage.MigrationSet }); ok {
			sets = append(sets, owner.Migrations())
		}
	}
	return sets
}

// CheckModules reports the problems of cfg's module set (unknown modules,
// disabled dependencies, invalid module options) without starting anything.
func CheckModules(cfg *configs.Config) error {
	return runtime.CheckModules(cfg)
}
