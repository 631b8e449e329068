package configs

import (
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

func TestEnvNamesUnique(t *testing.T) {
	ko := koanf.New(".")
	if err := ko.Load(rawbytes.Provider(defaultYAML), yaml.Parser()); err != nil {
		t.Fatal(err)
	}

	seen := map[string]string{}
	for _, path := range ko.Keys() {
		name := envName(path)
		if other, ok := seen[name]; ok {
			t.Errorf("%s and %s both map to %s", path, other, name)
		}
		seen[name] = path
	}

	index := newEnvIndex(ko.Raw())
	for name, key := range index.keys {
		if envName(key.path) != name {
			t.Errorf("index maps %s to %s", name, key.path)
		}
		if seen[name] != key.path {
			t.Errorf("index has %s for %s, which nexus.yaml does not set", name, key.path)
		}
	}
	for name, path := range seen {
		if _, ok := index.keys[name]; !ok {
			t.Errorf("index has no variable for %s", path)
		}
	}
}
