package entitlements

import (
	"errors"
	"fmt"
	"time"
)

// Bounds of modules.entitlements.trial_length.
const (
	minTrialLength = time.Hour
	maxTrialLength = 365 * 24 * time.Hour
)

// options is the module's config section, modules.entitlements. The
// defaults here match configs/nexus.yaml, which documents each key.
type options struct {
	// TrialTier is the catalog tier that a trial grants.
	TrialTier string `koanf:"trial_tier"`
	// TrialLength is how long a trial lasts from its start.
	TrialLength time.Duration `koanf:"trial_length"`
}

func defaultOptions() options {
	return options{TrialTier: "pro", TrialLength: 14 * 24 * time.Hour}
}

// validate checks ranges; each error names its key under modules.entitlements.
// Whether trial_tier is in the catalog is checked at provision, where the
// catalog is known.
func (o options) validate() error {
	var problems []error
	if o.TrialTier == "" {
		problems = append(problems, errors.New("modules.entitlements.trial_tier: must not be empty"))
	}
	if o.TrialLength < minTrialLength || o.TrialLength > maxTrialLength {
		problems = append(problems, fmt.Errorf("modules.entitlements.trial_length: must be between %s and %s", minTrialLength, maxTrialLength))
	}
	return errors.Join(problems...)
}
