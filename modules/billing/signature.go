package billing

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Reasons a Stripe-Signature header fails verification.
var (
	errSignatureMissing   = errors.New("the Stripe-Signature header is missing")
	errSignatureMalformed = errors.New("the Stripe-Signature header is malformed")
	errSignatureStale     = errors.New("the Stripe-Signature timestamp is outside the tolerance")
	errSignatureMismatch  = errors.New("no v1 signature of the Stripe-Signature header matches the body")
	errNoWebhookSecret    = errors.New("no webhook secret is configured")
)

// verifySignature checks a Stripe-Signature header, "t=<unix seconds>,
// v1=<hex HMAC-SHA256>[,v1=...]", against the raw body. The signed
// timestamp must be within tolerance of now, either way. The body is
// accepted when any v1 signature matches any of the secrets, so an
// endpoint secret can be rolled while Stripe signs with both. Other schemes
// (v0) are ignored, as Stripe's own libraries do.
func verifySignature(payload []byte, header string, secrets []string, tolerance time.Duration, now time.Time) error {
	if len(secrets) == 0 {
		return errNoWebhookSecret
	}
	if strings.TrimSpace(header) == "" {
		return errSignatureMissing
	}

	var timestamp time.Time
	var signatures [][]byte
	for _, pair := range strings.Split(header, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return errSignatureMalformed
		}
		switch key {
		case "t":
			seconds, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: timestamp %q is not an integer", errSignatureMalformed, value)
			}
			timestamp = time.Unix(seconds, 0)
		case "v1":
			signature, err := hex.DecodeString(value)
			if err != nil {
				continue
			}
			signatures = append(signatures, signature)
		}
	}
	if timestamp.IsZero() || len(signatures) == 0 {
		return errSignatureMalformed
	}

	age := now.Sub(timestamp)
	if age > tolerance || age < -tolerance {
		return errSignatureStale
	}
	for _, secret := range secrets {
		expected := webhook.ComputeSignature(timestamp, payload, secret)
		for _, signature := range signatures {
			if hmac.Equal(expected, signature) {
				return nil
			}
		}
	}
	return errSignatureMismatch
}
