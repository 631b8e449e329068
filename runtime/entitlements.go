package runtime

import (
	"context"
	"fmt"

	"github.com/nexus-suite/nexus/configs"
)

// Entitlement sources, from the lowest precedence to the highest.
const (
	SourceDefault      = "default"
	SourceTrial        = "trial"
	SourceSubscription = "subscription"
	SourceOverride     = "override"
)

// TierEntitlements returns the snapshot that tier id of the catalog grants,
// with source as its origin.
func TierEntitlements(tiers configs.Tiers, id, source string) (Entitlements, error) {
	tier, ok := tiers.Catalog[id]
	if !ok {
		return Entitlements{}, fmt.Errorf("tier %q is not in the catalog", id)
	}
	features := append([]string{}, tier.Features...)
	return Entitlements{Tier: id, TierName: tier.Name, Source: source, Features: features, Limits: tier.Limits}, nil
}

// DefaultResolver gives every user the catalog's default tier. It stays the
// resolver until a module that resolves subscriptions, trials and
// overrides replaces it.
type DefaultResolver struct {
	Tiers configs.Tiers
}

// Resolve returns the default tier's entitlements.
func (r DefaultResolver) Resolve(context.Context, string) (Entitlements, error) {
	return TierEntitlements(r.Tiers, r.Tiers.Default, SourceDefault)
}
