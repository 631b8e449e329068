package billing

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// maxWebhookTolerance bounds modules.billing.webhook_tolerance: Stripe
// retries a failed delivery with a fresh signature, so a long tolerance only
// widens the window for replaying a captured request.
const maxWebhookTolerance = time.Hour

// options is the module's config section, modules.billing. The defaults
// here match configs/nexus.yaml, which documents each key.
type options struct {
	// APIURL is the base URL of the Stripe API; tests point it at stripe-mock.
	APIURL string `koanf:"api_url"`
	// SecretKey is the Stripe secret API key. Empty turns off every call to
	// Stripe: checkout, portal, re-reads and reconciliation.
	SecretKey string `koanf:"secret_key"`
	// WebhookSecret verifies the Stripe-Signature of webhook deliveries.
	WebhookSecret string `koanf:"webhook_secret"`
	// WebhookSecretPrevious is also accepted while an endpoint secret is rolled.
	WebhookSecretPrevious string `koanf:"webhook_secret_previous"`
	// WebhookTolerance is the maximum age of a signature's timestamp.
	WebhookTolerance time.Duration `koanf:"webhook_tolerance"`
	// PastDueGrace is how long a past_due subscription keeps its tier.
	PastDueGrace time.Duration `koanf:"past_due_grace"`
	// SuccessURL and CancelURL are where Stripe Checkout sends the user back.
	SuccessURL string `koanf:"success_url"`
	CancelURL  string `koanf:"cancel_url"`
	// PortalReturnURL is the page that the customer portal sends the user back to.
	PortalReturnURL string `koanf:"portal_return_url"`
	// RequestTimeout bounds one call to the Stripe API.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// ReconcileInterval is how often the server reads every subscription
	// from Stripe again and corrects drift; zero turns it off.
	ReconcileInterval time.Duration `koanf:"reconcile_interval"`
}

func defaultOptions() options {
	return options{
		APIURL:            "https://api.stripe.com",
		WebhookTolerance:  5 * time.Minute,
		PastDueGrace:      72 * time.Hour,
		SuccessURL:        "http://127.0.0.1:8080/billing/success",
		CancelURL:         "http://127.0.0.1:8080/billing/cancel",
		PortalReturnURL:   "http://127.0.0.1:8080/billing",
		RequestTimeout:    10 * time.Second,
		ReconcileInterval: time.Hour,
	}
}

// webhookSecrets returns the endpoint secrets that verify a delivery.
func (o options) webhookSecrets() []string {
	var secrets []string
	for _, secret := range []string{o.WebhookSecret, o.WebhookSecretPrevious} {
		if secret != "" {
			secrets = append(secrets, secret)
		}
	}
	return secrets
}

// validate checks ranges; each error names its key under modules.billing.
func (o options) validate() error {
	var problems []error
	check := func(ok bool, key, message string) {
		if !ok {
			problems = append(problems, fmt.Errorf("modules.billing.%s: %s", key, message))
		}
	}
	absolute := func(raw string) bool {
		parsed, err := url.Parse(raw)
		return err == nil && (parsed.Scheme == "http" || parsed.Scheme == "https") && parsed.Host != ""
	}

	check(absolute(o.APIURL), "api_url", "must be an absolute http or https URL")
	check(absolute(o.SuccessURL), "success_url", "must be an absolute http or https URL")
	check(absolute(o.CancelURL), "cancel_url", "must be an absolute http or https URL")
	check(absolute(o.PortalReturnURL), "portal_return_url", "must be an absolute http or https URL")
	check(o.WebhookTolerance >= time.Second && o.WebhookTolerance <= maxWebhookTolerance,
		"webhook_tolerance", fmt.Sprintf("must be between 1s and %s", maxWebhookTolerance))
	check(o.PastDueGrace >= 0, "past_due_grace", "must not be negative")
	check(o.RequestTimeout >= 100*time.Millisecond && o.RequestTimeout <= time.Minute,
		"request_timeout", "must be between 100ms and 1m")
	check(o.ReconcileInterval == 0 || o.ReconcileInterval >= time.Minute,
		"reconcile_interval", "must be 0s (off) or at least 1m")
	return errors.Join(problems...)
}
