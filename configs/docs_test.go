package configs_test

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nexus-suite/nexus/configs"
)

// defaultNodes parses the embedded nexus.yaml into its root mapping node.
func defaultNodes(t *testing.T) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(configs.DefaultYAML(), &doc); err != nil {
		t.Fatalf("parse nexus.yaml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatal("nexus.yaml is not one mapping")
	}
	return doc.Content[0]
}

// walkKeys calls visit for every key of mapping and of the mappings below
// it, with the key's dotted path, its node and its value node.
func walkKeys(mapping *yaml.Node, prefix string, visit func(path string, key, value *yaml.Node)) {
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		key, value := mapping.Content[i], mapping.Content[i+1]
		path := key.Value
		if prefix != "" {
			path = prefix + "." + key.Value
		}
		visit(path, key, value)
		if value.Kind == yaml.MappingNode {
			walkKeys(value, path, visit)
		}
	}
}

func TestDefaultYAMLDocumentsEveryKey(t *testing.T) {
	walkKeys(defaultNodes(t), "", func(path string, key, value *yaml.Node) {
		comment := strings.TrimSpace(key.HeadComment)
		if comment == "" {
			t.Errorf("%s (line %d) has no comment above it", path, key.Line)
			return
		}
		if value.Kind != yaml.MappingNode && !strings.Contains(strings.ToLower(comment), "default") {
			t.Errorf("%s (line %d): comment does not state the default: %q", path, key.Line, comment)
		}
	})
}

func TestDefaultYAMLHasEveryOption(t *testing.T) {
	present := map[string]bool{}
	root := defaultNodes(t)
	walkKeys(root, "", func(path string, _, _ *yaml.Node) { present[path] = true })

	for _, path := range structKeys(reflect.TypeOf(configs.Config{}), "", present) {
		if !present[path] {
			t.Errorf("option %s is missing from nexus.yaml", path)
		}
	}
}

// structKeys lists the key paths of a struct type's koanf tags. Maps are
// expanded with the keys that nexus.yaml has below them (tier ids, module
// names), and a map of tiers must hold at least one.
func structKeys(typ reflect.Type, prefix string, present map[string]bool) []string {
	var paths []string
	for i := range typ.NumField() {
		field := typ.Field(i)
		path := field.Tag.Get("koanf")
		if prefix != "" {
			path = prefix + "." + path
		}
		paths = append(paths, path)

		switch field.Type.Kind() {
		case reflect.Struct:
			paths = append(paths, structKeys(field.Type, path, present)...)
		case reflect.Map:
			elem := field.Type.Elem()
			for _, child := range childKeys(path, present) {
				paths = append(paths, path+"."+child)
				if elem.Kind() == reflect.Struct {
					paths = append(paths, structKeys(elem, path+"."+child, present)...)
				} else {
					paths = append(paths, path+"."+child+".enabled")
				}
			}
		}
	}
	return paths
}

// childKeys returns the names directly below path in present.
func childKeys(path string, present map[string]bool) []string {
	var children []string
	for key := range present {
		rest, ok := strings.CutPrefix(key, path+".")
		if ok && !strings.Contains(rest, ".") {
			children = append(children, rest)
		}
	}
	return children
}

func TestDefaultYAMLTiersAndModules(t *testing.T) {
	present := map[string]bool{}
	walkKeys(defaultNodes(t), "", func(path string, _, _ *yaml.Node) { present[path] = true })

	for _, path := range []string{"tiers.catalog.core", "tiers.catalog.pro", "tiers.catalog.studio",
		"modules.auth.enabled", "modules.entitlements.enabled"} {
		if !present[path] {
			t.Errorf("%s is missing from nexus.yaml", path)
		}
	}
}
