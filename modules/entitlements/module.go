// Package entitlements is the Entitlements API section: the tier catalog,
// the caller's tier with its features, limits and source, the one trial an
// account gets, and operators' overrides with their history. The source
// is an operator override, a subscription, a trial or the default tier.
// The module's resolver replaces the runtime's default one while the
// module runs, and its expiry timer ends trials and overrides at their
// time without a request.
package entitlements

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "entitlements"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
	runtime.RegisterAccountHook(Name, deleteUser)
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/entitlements routes and the operator routes under
// /v1/admin/users/{id}/entitlements.
type Module struct {
	opts     options
	host     *runtime.Host
	tiers    configs.Tiers
	store    *store
	resolver *resolver
	expiry   *expiry
	// catalog is the public tier list, sorted by rank, built at provision.
	catalog []tierView
}

// tierView is one tier as GET /v1/entitlements/tiers shows it.
type tierView struct {
	ID       string             `json:"id"`
	Name     string             `json:"name"`
	Rank     int                `json:"rank"`
	Features []string           `json:"features"`
	Limits   configs.TierLimits `json:"limits"`
	Prices   configs.TierPrices `json:"prices"`
}

// Info names the module and its dependency on auth, whose sessions every
// authenticated route needs and whose users.role column the operator
// routes read.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Entitlements", Requires: []string{"auth"}}
}

// Migrations returns the module's tables: subscriptions, trials, overrides
// and the history.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.entitlements strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	return nil
}

// Provision builds the public catalog, the store, the resolver and the
// expiry timer's state, and provides the subscription recorder that the
// billing module writes through.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.host = host
	m.tiers = host.Config.Tiers
	m.store = &store{db: host.DB}
	logger := host.Logger.With(slog.String("module", Name))
	m.resolver = &resolver{store: m.store, tiers: m.tiers, clock: host.Clock, logger: logger}
	m.expiry = newExpiry(m.store, host.Clock, host.Users, logger)
	if host.Services != nil {
		recorder := &Recorder{store: m.store, clock: host.Clock, users: runtime.Notifier(host.Users), expiry: m.expiry, logger: logger}
		runtime.Provide[runtime.SubscriptionRecorder](host.Services, runtime.ServiceSubscriptions, recorder)
	}

	m.catalog = m.catalog[:0]
	for id, tier := range m.tiers.Catalog {
		features := append([]string{}, tier.Features...)
		m.catalog = append(m.catalog, tierView{ID: id, Name: tier.Name, Rank: tier.Rank, Features: features, Limits: tier.Limits, Prices: tier.Prices})
	}
	sort.Slice(m.catalog, func(i, j int) bool { return m.catalog[i].Rank < m.catalog[j].Rank })
	return nil
}

// Validate checks that the trial tier is in the catalog.
func (m *Module) Validate() error {
	if _, ok := m.tiers.Catalog[m.opts.TrialTier]; !ok {
		return fmt.Errorf("modules.entitlements.trial_tier: tier %q is not in tiers.catalog", m.opts.TrialTier)
	}
	return nil
}

// Start ends the trials and overrides that came due while the module was
// not running, arms the expiry timer and installs the module's resolver.
// Actors that already hold a snapshot keep it until they are refreshed.
func (m *Module) Start(ctx context.Context) error {
	if err := m.expiry.start(ctx); err != nil {
		return fmt.Errorf("start entitlement expiry: %w", err)
	}
	if m.host.Users != nil {
		m.host.Users.SetResolver(m.resolver)
	}
	return nil
}

// Run waits until the supervisor cancels ctx, or returns the error of a
// failed expiry run so that the supervisor restarts the module, whose
// Start then rebuilds the timer from the store.
func (m *Module) Run(ctx context.Context) error {
	failures := m.expiry.failures
	select {
	case <-ctx.Done():
		return nil
	case err := <-failures:
		return fmt.Errorf("entitlement expiry: %w", err)
	}
}

// Stop cancels the expiry timer and gives the users back the default tier
// resolver. It is safe after a Provision that failed and without Start.
func (m *Module) Stop(context.Context) error {
	if m.expiry != nil {
		m.expiry.stop()
	}
	if m.host != nil && m.host.Users != nil {
		m.host.Users.SetResolver(runtime.DefaultResolver{Tiers: m.tiers})
	}
	return nil
}

// Routes lists the module's routes.
func (m *Module) Routes() []edge.Route {
	private := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, Authenticated: true, Summary: summary}
	}
	return []edge.Route{
		private("GET", "/v1/entitlements", "The caller's tier, its source, features, limits and trial", m.current),
		{
			Method: "GET", Path: "/v1/entitlements/tiers", Module: Name, Handler: m.listTiers, IPLimited: true,
			Summary: "The public tier catalog",
		},
		private("GET", "/v1/entitlements/check", "Whether the caller has one feature, and the tier that grants it", m.check),
		private("POST", "/v1/entitlements/trial", "Start the one trial an account gets", m.startTrial),

		private("GET", "/v1/admin/users/{id}/entitlements", "A user's entitlements, override and history (operators)", m.adminShow),
		private("PUT", "/v1/admin/users/{id}/entitlements/override", "Set a user's entitlement override (operators)", m.adminSetOverride),
		private("DELETE", "/v1/admin/users/{id}/entitlements/override", "Clear a user's entitlement override (operators)", m.adminClearOverride),
	}
}

// current returns the snapshot that the user's actor admitted the request with.
func (m *Module) current(r *edge.Request) error {
	return r.JSON(http.StatusOK, r.Principal.Entitlements)
}

func (m *Module) listTiers(r *edge.Request) error {
	return r.JSON(http.StatusOK, m.catalog)
}

// checkResult is the response body of GET /v1/entitlements/check.
type checkResult struct {
	Feature      string  `json:"feature"`
	Granted      bool    `json:"granted"`
	CurrentTier  string  `json:"current_tier"`
	RequiredTier *string `json:"required_tier"`
}

func (m *Module) check(r *edge.Request) error {
	feature := string(r.Ctx.QueryArgs().Peek("feature"))

	if !knownFeature(feature) {
		err := edge.Validation("feature", "feature must be one of the known features")
		err.Details["allowed"] = configs.Features
		return err
	}

	result := checkResult{
		Feature:     feature,
		Granted:     r.Principal.Entitlements.HasFeature(feature),
		CurrentTier: r.Principal.Entitlements.Tier,
	}
	for _, tier := range m.catalog {
		if contains(tier.Features, feature) {
			id := tier.ID
			result.RequiredTier = &id
			break
		}
	}
	return r.JSON(http.StatusOK, result)
}

func knownFeature(feature string) bool { return contains(configs.Features, feature) }

func contains(list []string, value string) bool {
	for _, item := range list {
		if item == value {
			return true
		}
	}
	return false
}
