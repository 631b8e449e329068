package runtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nexus-suite/nexus/runtime"
)

func TestAdmitCredentialChecksNoSession(t *testing.T) {
	f := newUsers(t)

	admission, err := f.users.AdmitCredential(context.Background(), "u1")
	if err != nil {
		t.Fatalf("AdmitCredential: %v", err)
	}
	if admission.Entitlements.Tier != "core" {
		t.Errorf("tier = %q, want core", admission.Entitlements.Tier)
	}
	if got := f.sessions.lookups.Load(); got != 0 {
		t.Errorf("session lookups = %d, want 0", got)
	}
}

func TestAdmitCredentialSharesRateLimit(t *testing.T) {
	f := newUsers(t)

	for i := 0; i < 30; i++ {
		if _, err := f.users.Admit(context.Background(), "u1", "s1"); err != nil {
			t.Fatalf("session request %d: %v", i+1, err)
		}
		if _, err := f.users.AdmitCredential(context.Background(), "u1"); err != nil {
			t.Fatalf("credential request %d: %v", i+1, err)
		}
	}
	_, err := f.users.AdmitCredential(context.Background(), "u1")
	if !errors.Is(err, runtime.ErrRateLimited) {
		t.Fatalf("61st request: err = %v, want ErrRateLimited", err)
	}
}
