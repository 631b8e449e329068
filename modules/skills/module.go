package skills

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "skills"

// Feature is the entitlement feature that every route of the module needs.
const Feature = "skills_hub"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
	runtime.RegisterAccountHook(Name, deleteUser)
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/skills routes.
type Module struct {
	opts  options
	host  *runtime.Host
	store *store
	blobs BlobStore
	// publishSlots holds one token per publish being unpacked.
	publishSlots chan struct{}
	// decoded is set once Decode has read the config section, so that
	// Routes can take the body limit of the publish route from it.
	decoded bool
}

// Info names the module and its dependencies: auth for the sessions of
// every route and the users that own skills, entitlements for the
// skills_hub feature and the tier's publishes per month.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Skills Hub", Requires: []string{"auth", "entitlements"}}
}

// Migrations returns the module's tables: skills, owners, versions,
// installations, publish counts, blobs and the search index.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.skills strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	m.decoded = true
	return nil
}

// Provision builds the store and the database blob store.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	if host.DB == nil {
		return fmt.Errorf("provision %s: the host has no database", Name)
	}
	m.host = host
	m.store = &store{db: host.DB}
	m.blobs = &dbBlobs{db: host.DB, clock: host.Clock}
	m.publishSlots = make(chan struct{}, m.opts.MaxConcurrentPublishes)
	return nil
}

// Validate has nothing to check beyond Decode.
func (m *Module) Validate() error { return nil }

// Start has no background work to begin; Run sweeps blobs.
func (m *Module) Start(context.Context) error { return nil }

// blobSweepInterval is how often Run deletes the archives that no version
// refers to, and blobSweepGrace how old such an archive must be. A
// rejected publish leaves its archive behind, and the grace keeps the
// archive of a publish of the same bytes that is still in flight.
const (
	blobSweepInterval = time.Hour
	blobSweepGrace    = time.Hour
)

// Run sweeps unreferenced archives every blobSweepInterval until ctx ends.
func (m *Module) Run(ctx context.Context) error {
	logger := m.host.Logger.With(slog.String("module", Name))
	for {
		done := make(chan struct{})
		timer := m.host.Clock.AfterFunc(blobSweepInterval, func() { close(done) })
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-done:
		}

		sweeper, ok := m.blobs.(interface {
			sweepUnreferenced(context.Context, time.Time) (int64, error)
		})
		if !ok {
			continue
		}
		deleted, err := sweeper.sweepUnreferenced(ctx, m.host.Clock.Now().Add(-blobSweepGrace))
		if err != nil && ctx.Err() == nil {
			logger.Error("sweep of unreferenced skill archives failed", slog.String("error", err.Error()))
		}
		if deleted > 0 {
			logger.Info("unreferenced skill archives deleted", slog.Int64("count", deleted))
		}
	}
}

// Stop has nothing to release; the database belongs to the host.
func (m *Module) Stop(context.Context) error { return nil }

// Routes lists the module's routes. Every route needs a bearer token and
// the skills_hub feature, so Core users get 403 TIER_REQUIRED. The body
// limit of the publish route is modules.skills.max_archive_bytes as
// decoded when the routes are mounted, or its default before a Decode. The
// handler checks the limit of the running config again.
func (m *Module) Routes() []edge.Route {
	opts := m.opts
	if !m.decoded {
		opts = defaultOptions()
	}
	route := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{
			Method: method, Path: path, Module: Name, Handler: handler,
			Authenticated: true, Feature: Feature, Summary: summary,
		}
	}

	publish := route("POST", "/v1/skills", "Publish a skill version from a zip or tar.gz archive", m.publish)
	publish.MaxBodyBytes = opts.MaxArchiveBytes
	return []edge.Route{
		publish,
		route("GET", "/v1/skills", "Search skills", m.search),
		route("GET", "/v1/skills/installed", "The caller's installed skills", m.installed),
		route("DELETE", "/v1/skills/installed/{name}", "Uninstall a skill", m.uninstall),
		route("GET", "/v1/skills/names/{name}/availability", "Whether the caller may publish under a name", m.availability),
		route("GET", "/v1/skills/{name}", "A skill with its owners", m.getSkill),
		route("POST", "/v1/skills/{name}/install", "Install a skill, pinned or following the latest version", m.install),
		route("POST", "/v1/skills/{name}/deprecate", "Mark a skill deprecated (owners)", m.deprecate),
		route("POST", "/v1/skills/{name}/undeprecate", "Clear a skill's deprecation (owners)", m.undeprecate),
		route("POST", "/v1/skills/{name}/owners", "Add a co-owner (owners)", m.addOwner),
		route("DELETE", "/v1/skills/{name}/owners/{user_id}", "Remove an owner (owners)", m.removeOwner),
		route("GET", "/v1/skills/{name}/versions", "A skill's versions, highest first", m.listVersions),
		route("GET", "/v1/skills/{name}/versions/{version}", "One version, or latest", m.getVersion),
		route("GET", "/v1/skills/{name}/versions/{version}/archive", "The archive of a version", m.downloadArchive),
		route("POST", "/v1/skills/{name}/versions/{version}/yank", "Yank a version (owners)", m.yank),
		route("POST", "/v1/skills/{name}/versions/{version}/unyank", "Restore a yanked version (owners)", m.unyank),
	}
}
