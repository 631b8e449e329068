package openapi

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	"gopkg.in/yaml.v3"
)

// merge adds each sections/*.yaml file, in name order, to the base
// document. A section may contain only tags, paths and components. Tags are
// appended, and paths and components are added by key. A key that the base
// or an earlier section already defines is an error, so no section can
// silently replace another's definition.
func merge(baseYAML []byte, files fs.FS) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(baseYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}

	names, err := fs.Glob(files, "sections/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list openapi sections: %w", err)
	}
	if len(names) == 0 {
		return baseYAML, nil
	}
	sort.Strings(names)

	for _, name := range names {
		raw, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		var section map[string]any
		if err := yaml.Unmarshal(raw, &section); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		if err := mergeSection(doc, section, path.Base(name)); err != nil {
			return nil, err
		}
	}
	return yaml.Marshal(doc)
}

func mergeSection(doc, section map[string]any, name string) error {
	for key, value := range section {
		switch key {
		case "tags":
			tags, ok := value.([]any)
			if !ok {
				return fmt.Errorf("%s: tags must be a list", name)
			}
			existing, _ := doc["tags"].([]any)
			doc["tags"] = append(existing, tags...)
		case "paths":
			if err := addKeys(doc, "paths", value, name+": paths"); err != nil {
				return err
			}
		case "components":
			kinds, ok := value.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: components must be a mapping", name)
			}
			components, _ := doc["components"].(map[string]any)
			if components == nil {
				components = map[string]any{}
				doc["components"] = components
			}
			for kind, entries := range kinds {
				if err := addKeys(components, kind, entries, name+": components."+kind); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: key %q is not allowed in a section (only tags, paths and components)", name, key)
		}
	}
	return nil
}

// addKeys copies the entries of value, a mapping, into parent[field],
// rejecting a key that is already there.
func addKeys(parent map[string]any, field string, value any, where string) error {
	entries, ok := value.(map[string]any)
	if !ok {
		return fmt.Errorf("%s must be a mapping", where)
	}
	target, _ := parent[field].(map[string]any)
	if target == nil {
		target = map[string]any{}
		parent[field] = target
	}
	for key, entry := range entries {
		if _, exists := target[key]; exists {
			return fmt.Errorf("%s: %q is already defined", where, key)
		}
		target[key] = entry
	}
	return nil
}
