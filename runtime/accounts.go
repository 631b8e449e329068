package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/nexus-suite/nexus/storage"
)

// AccountHook removes one module's data of a user from the database. The
// auth module runs every registered hook before it deletes an account,
// whether the hook's module is enabled or not, because a disabled module's
// rows stay in the database. Hooks run in the server and in `nexus admin`.
type AccountHook func(ctx context.Context, db *storage.DB, userID string) error

var (
	accountHooksMu sync.RWMutex
	accountHooks   = map[string]AccountHook{}
)

// RegisterAccountHook adds module's deletion hook. Modules call it from
// init, next to RegisterModule; registering one module twice panics.
func RegisterAccountHook(module string, hook AccountHook) {
	accountHooksMu.Lock()
	defer accountHooksMu.Unlock()

	if _, ok := accountHooks[module]; ok {
		panic(fmt.Sprintf("runtime: account hook of module %q registered twice", module))
	}
	accountHooks[module] = hook
}

// RunAccountHooks calls every registered hook, in module name order, and
// returns their errors joined. A failing hook does not stop the others, so
// a retry has less left to do.
func RunAccountHooks(ctx context.Context, db *storage.DB, userID string) error {
	accountHooksMu.RLock()
	names := make([]string, 0, len(accountHooks))
	for name := range accountHooks {
		names = append(names, name)
	}
	hooks := make(map[string]AccountHook, len(accountHooks))
	for name, hook := range accountHooks {
		hooks[name] = hook
	}
	accountHooksMu.RUnlock()
	sort.Strings(names)

	var errs []error
	for _, name := range names {
		if err := hooks[name](ctx, db, userID); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
