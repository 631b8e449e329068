package sync

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nexus-suite/nexus/configs"
)

func TestEmbeddedDefaultsMatchCode(t *testing.T) {
	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	var m Module
	if err := m.Decode(cfg.ModuleSection(Name)); err != nil {
		t.Fatalf("decode the embedded modules.sync: %v", err)
	}
	if !reflect.DeepEqual(m.opts, defaultOptions()) {
		t.Errorf("nexus.yaml gives %+v,\ncode defaults are %+v", m.opts, defaultOptions())
	}
}

func TestDecodeRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name    string
		section map[string]any
		wantKey string
	}{
		{"unknown key", map[string]any{"colour": "blue"}, "modules.sync.colour"},
		{"short retention", map[string]any{"tombstone_retention": "30m"}, "modules.sync.tombstone_retention"},
		{"zero purge interval", map[string]any{"purge_interval": "0s"}, "modules.sync.purge_interval"},
		{"batch over the body limit", map[string]any{"max_batch_bytes": maxWriteBodyBytes + 1}, "modules.sync.max_batch_bytes"},
		{"page limit over page max", map[string]any{"page_limit": 2000}, "modules.sync.page_limit"},
		{"page max too large", map[string]any{"page_max": 20000}, "modules.sync.page_max"},
		{"short idempotency retention", map[string]any{"idempotency_retention": "10m"}, "modules.sync.idempotency_retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m Module
			err := m.Decode(tc.section)
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}

func TestValidateRejectsItemLimitOverBody(t *testing.T) {
	m := Module{tiers: configs.Tiers{Catalog: map[string]configs.Tier{
		"pro": {Limits: configs.TierLimits{SyncItemBytes: maxItemBytesInBody + 1}},
	}}}
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), "tiers.catalog.pro.limits.sync_item_bytes") {
		t.Errorf("Validate = %v, want an error naming tiers.catalog.pro.limits.sync_item_bytes", err)
	}

	m.tiers.Catalog["pro"] = configs.Tier{Limits: configs.TierLimits{SyncItemBytes: maxItemBytesInBody}}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate at the largest item = %v", err)
	}
}
