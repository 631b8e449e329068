package billing

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

func TestVerifySignature(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	payload := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
	sign := func(secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
	}
	secrets := []string{"whsec_new", "whsec_old"}

	tests := []struct {
		name    string
		header  string
		secrets []string
		want    error
	}{
		{"current secret", sign("whsec_new", now), secrets, nil},
		{"previous secret", sign("whsec_old", now), secrets, nil},
		{"second v1 matches", fmt.Sprintf("t=%d,v1=00ff,v1=%x", now.Unix(), webhook.ComputeSignature(now, payload, "whsec_new")), secrets, nil},
		{"v0 ignored", sign("whsec_new", now) + ",v0=zz", secrets, nil},
		{"missing", "", secrets, errSignatureMissing},
		{"no timestamp", "v1=00ff", secrets, errSignatureMalformed},
		{"no v1", fmt.Sprintf("t=%d", now.Unix()), secrets, errSignatureMalformed},
		{"pair without equals", "garbage", secrets, errSignatureMalformed},
		{"stale", sign("whsec_new", now.Add(-6*time.Minute)), secrets, errSignatureStale},
		{"future", sign("whsec_new", now.Add(6*time.Minute)), secrets, errSignatureStale},
		{"wrong secret", sign("whsec_other", now), secrets, errSignatureMismatch},
		{"no secret configured", sign("whsec_new", now), nil, errNoWebhookSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifySignature(payload, tt.header, tt.secrets, 5*time.Minute, now)
			if !errors.Is(err, tt.want) {
				t.Errorf("verifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeSubscriptionPeriodEnd(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want int64
	}{
		{"on the subscription", `{"id":"sub_1","status":"active","current_period_end":100}`, 100},
		{"on the first item", `{"id":"sub_1","status":"active","items":{"data":[{"current_period_end":200}]}}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := decodeSubscription([]byte(tt.raw))
			if err != nil {
				t.Fatalf("decodeSubscription: %v", err)
			}
			if got := sub.periodEnd().Unix(); got != tt.want {
				t.Errorf("periodEnd = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := defaultOptions().validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := defaultOptions()
	bad.APIURL = "stripe"
	bad.WebhookTolerance = 2 * time.Hour
	bad.ReconcileInterval = time.Second
	if err := bad.validate(); err == nil {
		t.Error("invalid options passed validation")
	}
}
