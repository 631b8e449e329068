// Package entitlements is the Entitlements API section: the tier catalog
// and what the caller's tier grants. Until subscriptions, trials and
// overrides exist, every user has the catalog's default tier.
package entitlements

import (
	"context"
	"net/http"
	"sort"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
)

// Name is the module's key under "modules" in the config.
const Name = "entitlements"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
}

// options is the module's config section; it has no options yet.
type options struct{}

// Module serves the /v1/entitlements routes.
type Module struct {
	tiers configs.Tiers
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
// authenticated route needs.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Entitlements", Requires: []string{"auth"}}
}

// Decode reads modules.entitlements strictly.
func (m *Module) Decode(section map[string]any) error {
	return configs.DecodeSection("modules."+Name, section, &options{})
}

// Provision builds the public catalog from the tier configuration.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.tiers = host.Config.Tiers
	m.catalog = m.catalog[:0]
	for id, tier := range m.tiers.Catalog {
		features := append([]string{}, tier.Features...)
		m.catalog = append(m.catalog, tierView{ID: id, Name: tier.Name, Rank: tier.Rank, Features: features, Limits: tier.Limits, Prices: tier.Prices})
	}
	sort.Slice(m.catalog, func(i, j int) bool { return m.catalog[i].Rank < m.catalog[j].Rank })
	return nil
}

// Validate has nothing to check beyond what the config loader checked.
func (m *Module) Validate() error { return nil }

// Start does nothing: the module has no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop does nothing: the module holds nothing of its own.
func (m *Module) Stop(context.Context) error { return nil }

// Routes lists the module's routes.
func (m *Module) Routes() []edge.Route {
	return []edge.Route{
		{
			Method: "GET", Path: "/v1/entitlements", Module: Name, Handler: m.current, Authenticated: true,
			Summary: "The caller's tier, its source, features and limits",
		},
		{
			Method: "GET", Path: "/v1/entitlements/tiers", Module: Name, Handler: m.listTiers, IPLimited: true,
			Summary: "The public tier catalog",
		},
		{
			Method: "GET", Path: "/v1/entitlements/check", Module: Name, Handler: m.check, Authenticated: true,
			Summary: "Whether the caller has one feature, and the tier that grants it",
		},
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
