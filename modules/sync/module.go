package sync

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "sync"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
	runtime.RegisterAccountHook(Name, deleteUser)
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/sync routes and purges expired tombstones and
// idempotency records in the background.
type Module struct {
	opts   options
	tiers  configs.Tiers
	store  *store
	clock  clock.Clock
	logger *slog.Logger
	// requiredTier is the lowest-ranked tier that grants sync, for the
	// details of 403 TIER_REQUIRED; empty when no tier does.
	requiredTier string
}

// Info names the module and the modules it needs: auth for the users and
// sessions, entitlements for the tier whose limits the quotas read.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Sync", Requires: []string{"auth", "entitlements"}}
}

// Migrations returns the module's tables.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.sync strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	return nil
}

// Provision opens the store and finds the tier that grants sync.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.tiers = host.Config.Tiers
	m.store = &store{db: host.DB}
	m.clock = host.Clock
	m.logger = host.Logger.With(slog.String("module", Name))
	m.requiredTier = lowestTierWith(m.tiers, featureSync)
	return nil
}

// Validate checks that the largest item of every tier fits under the body
// limit of the write routes.
func (m *Module) Validate() error {
	for _, id := range sortedTierIDs(m.tiers) {
		if limit := m.tiers.Catalog[id].Limits.SyncItemBytes; limit > maxItemBytesInBody {
			return fmt.Errorf("tiers.catalog.%s.limits.sync_item_bytes: %d is too large for sync, whose request bodies fit at most %d payload bytes",
				id, limit, maxItemBytesInBody)
		}
	}
	return nil
}

// Start does nothing, because the purge runs in Run.
func (m *Module) Start(context.Context) error { return nil }

// Stop has nothing to release: Run ends when its context is cancelled.
func (m *Module) Stop(context.Context) error { return nil }

// Routes lists the module's routes. Every route is authenticated. The
// routes do not set edge.Route.Feature, because a user without the sync
// feature who still has sync data (after a downgrade) may read and
// delete it: the handlers check the tier. The write routes carry a body
// limit of their own, and their handlers apply the configured limits.
func (m *Module) Routes() []edge.Route {
	route := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, Authenticated: true, Summary: summary}
	}
	write := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		r := route(method, path, summary, handler)
		r.MaxBodyBytes = maxWriteBodyBytes
		return r
	}
	return []edge.Route{
		route("GET", "/v1/sync/info", "The caller's sync cursor, usage, limits and collections", m.info),
		route("GET", "/v1/sync/collections/{collection}/changes", "Items and tombstones changed after a cursor", m.changes),
		route("GET", "/v1/sync/collections/{collection}/items/{id}", "One item with its payload", m.getItem),
		write("PUT", "/v1/sync/collections/{collection}/items/{id}", "Create or replace an item", m.putItem),
		route("DELETE", "/v1/sync/collections/{collection}/items/{id}", "Delete an item, leaving a tombstone", m.deleteItem),
		write("POST", "/v1/sync/collections/{collection}/batch", "Apply puts and deletes all or nothing", m.batch),

		route("GET", "/v1/sync/keys", "The caller's key envelopes, without contents", m.listKeys),
		route("GET", "/v1/sync/keys/{key_id}", "One key envelope", m.getKey),
		write("PUT", "/v1/sync/keys/{key_id}", "Store or rotate a key envelope", m.putKey),

		route("GET", "/v1/sync/devices", "The caller's devices", m.listDevices),
		route("POST", "/v1/sync/devices", "Record a device and its public key", m.createDevice),
		route("GET", "/v1/sync/devices/{device_id}", "One device", m.getDevice),
		route("DELETE", "/v1/sync/devices/{device_id}", "Remove a device", m.deleteDevice),
	}
}

// lowestTierWith returns the id of the lowest-ranked catalog tier that
// grants feature, ties broken by id, or "" when no tier does. It matches
// the tier that the edge's feature gate names.
func lowestTierWith(tiers configs.Tiers, feature string) string {
	best := ""
	for _, id := range sortedTierIDs(tiers) {
		tier := tiers.Catalog[id]
		if !slices.Contains(tier.Features, feature) {
			continue
		}
		if best == "" || tier.Rank < tiers.Catalog[best].Rank {
			best = id
		}
	}
	return best
}

func sortedTierIDs(tiers configs.Tiers) []string {
	ids := make([]string, 0, len(tiers.Catalog))
	for id := range tiers.Catalog {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
